"""The review queue stores each pair once and remembers decisions (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine

from yilian.db import session_factory, unit_of_work
from yilian.mpi.review import (
    ComparisonEvidence,
    ReviewError,
    count_items,
    enqueue_candidate,
    list_items,
)

EVIDENCE = [
    ComparisonEvidence("surname", 1, "same characters", 4.2),
    ComparisonEvidence("phone", 0, "missing", 0.0),
]


def test_same_pair_twice_is_one_open_item_with_fresh_evidence(engine: Engine) -> None:
    factory = session_factory(engine)
    with unit_of_work(factory) as session:
        first = enqueue_candidate(
            session,
            "p2",
            "p1",
            probability=0.4,
            match_weight=-0.6,
            comparisons=EVIDENCE,
            source="batch",
        )
    with unit_of_work(factory) as session:
        again = enqueue_candidate(
            session,
            "p1",
            "p2",
            probability=0.7,
            match_weight=1.2,
            comparisons=EVIDENCE[:1],
            source="realtime",
        )
        assert again.id == first.id
        assert (again.patient_a, again.patient_b) == ("p1", "p2")
    with unit_of_work(factory) as session:
        [item] = list_items(session)
        assert item.probability == pytest.approx(0.7)
        assert item.source == "realtime"
        assert item.comparisons == [
            {"name": "surname", "level": 1, "label": "same characters", "weight": 4.2}
        ]
        assert count_items(session) == 1


def test_a_decided_pair_is_not_reopened(engine: Engine) -> None:
    factory = session_factory(engine)
    with unit_of_work(factory) as session:
        item = enqueue_candidate(
            session,
            "a",
            "b",
            probability=0.5,
            match_weight=0.0,
            comparisons=EVIDENCE,
            source="batch",
        )
        item.status = "not-linked"
    with unit_of_work(factory) as session:
        again = enqueue_candidate(
            session,
            "b",
            "a",
            probability=0.9,
            match_weight=3.0,
            comparisons=EVIDENCE,
            source="realtime",
        )
        assert again.status == "not-linked"
        assert again.probability == pytest.approx(0.5)
        assert count_items(session) == 0


def test_queue_orders_by_probability_or_age(engine: Engine) -> None:
    factory = session_factory(engine)
    with unit_of_work(factory) as session:
        for k, p in enumerate([0.2, 0.9, 0.5]):
            enqueue_candidate(
                session,
                f"x{k}",
                f"y{k}",
                probability=p,
                match_weight=0.0,
                comparisons=EVIDENCE,
                source="batch",
            )
    with unit_of_work(factory) as session:
        assert [i.probability for i in list_items(session)] == [0.9, 0.5, 0.2]
        assert [i.patient_a for i in list_items(session, order="age")] == ["x0", "x1", "x2"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"patient_b": "same"}, "patient_b"),
        ({"patient_a": ""}, "patient_a"),
        ({"probability": 1.5}, "probability"),
        ({"match_weight": float("nan")}, "match_weight"),
        ({"source": "guess"}, "source"),
    ],
)
def test_bad_proposals_name_the_field(
    engine: Engine, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {
        "patient_a": "same",
        "patient_b": "other",
        "probability": 0.5,
        "match_weight": 0.0,
        "comparisons": EVIDENCE,
        "source": "batch",
    }
    args.update(kwargs)
    with unit_of_work(session_factory(engine)) as session, pytest.raises(ReviewError) as error:
        enqueue_candidate(session, **args)  # type: ignore[arg-type]
    assert error.value.field == field


def test_two_requests_proposing_a_new_pair_at_once_make_one_item(engine: Engine) -> None:
    """The second insert waits on the unique pair, fails, and updates the first one's row."""
    factory = session_factory(engine)
    first_in = threading.Event()
    results: list[tuple[int, float]] = []

    def propose(probability: float, hold: bool) -> None:
        with unit_of_work(factory) as session:
            row = enqueue_candidate(
                session, "m", "n", probability=probability, match_weight=0.0,
                comparisons=EVIDENCE, source="realtime",
            )  # fmt: skip
            if hold:
                first_in.set()
                time.sleep(0.5)  # the other request's insert now waits on this one
            results.append((row.id, row.probability))

    holder = threading.Thread(target=propose, args=(0.3, True))
    holder.start()
    assert first_in.wait(10)
    propose(0.6, False)
    holder.join(10)
    assert [r[0] for r in results][0] == results[1][0]
    with unit_of_work(factory) as session:
        [item] = list_items(session)
        assert item.probability == pytest.approx(0.6)
