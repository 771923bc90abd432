"""Appending: numbering, linking, the caller's transaction, input rules, patient look-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select

from yilian.audit import (
    AuditInputError,
    accesses_to_patient,
    append,
    append_batch,
    chain_head,
    latest,
    verify,
)
from yilian.audit.canonical import GENESIS_HASH, entry_hash
from yilian.audit.models import AuditEntryRow, AuditPatientRow
from yilian.db import session_factory, unit_of_work

from .helpers import all_rows, an_input, fill


def test_first_entry_starts_from_genesis_and_is_stored_as_returned(engine: Engine) -> None:
    factory = session_factory(engine)
    with unit_of_work(factory) as session:
        record = append(session, an_input(1, event="search", query="Observation?patient=p-1"))
    assert record.seq == 1
    assert record.prev_hash == GENESIS_HASH
    assert record.action == "E"  # FHIR: a search is an execute
    assert record.hash == entry_hash(record.__dict__)
    assert all_rows(factory) == [record]


def test_each_transaction_links_to_the_previous_head(engine: Engine) -> None:
    factory = session_factory(engine)
    records = []
    for n in range(3):
        with unit_of_work(factory) as session:
            records.append(append(session, an_input(n, event="create")))
    assert [r.seq for r in records] == [1, 2, 3]
    assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:2]]
    assert {r.action for r in records} == {"C"}
    with factory() as session:
        assert chain_head(session) == (3, records[-1].hash)
        assert verify(session).ok


def test_batch_appends_consecutive_linked_entries(engine: Engine) -> None:
    records = fill(engine, 50)
    assert [r.seq for r in records] == list(range(1, 51))
    with session_factory(engine)() as session:
        report = verify(session)
    assert (report.ok, report.checked, report.head_seq) == (True, 50, 50)


def test_rolled_back_transaction_leaves_no_entry_and_no_gap(engine: Engine) -> None:
    factory = session_factory(engine)
    fill(engine, 2)
    with pytest.raises(RuntimeError), unit_of_work(factory) as session:
        append(session, an_input(9))
        raise RuntimeError("the audited write failed")
    with unit_of_work(factory) as session:
        after = append(session, an_input(10))
    assert after.seq == 3
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntryRow)) == 3
        assert verify(session).ok


def test_empty_batch_writes_nothing(engine: Engine) -> None:
    factory = session_factory(engine)
    with unit_of_work(factory) as session:
        assert append_batch(session, []) == []
    assert all_rows(factory) == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"purpose": "CURIOSITY"}, "purpose"),
        ({"event": "peek"}, "event"),
        ({"outcome": 3}, "outcome"),
        ({"actor": ""}, "actor"),
        ({"actor_kind": "robot"}, "actor_kind"),
        ({"resources": ["Observation"]}, "resources"),
        ({"resources": ["Observation/a b"]}, "resources"),
        ({"patients": ["Group/g1"]}, "patients"),
        ({"request_id": "x" * 129}, "request_id"),
    ],
)
def test_invalid_input_is_refused_naming_the_field(
    engine: Engine, overrides: dict[str, object], field: str
) -> None:
    factory = session_factory(engine)
    with (
        pytest.raises(AuditInputError, match=rf"audit entry 1: {field}:"),
        unit_of_work(factory) as session,
    ):
        append_batch(session, [an_input(0), an_input(1, **overrides)])
    assert all_rows(factory) == []


def test_recorded_time_is_kept_in_utc_to_the_microsecond(engine: Engine) -> None:
    shanghai = timezone(timedelta(hours=8))
    moment = datetime(2025, 3, 1, 8, 30, 15, 123456, tzinfo=shanghai)
    factory = session_factory(engine)
    with unit_of_work(factory) as session:
        append(session, an_input(0, recorded=moment))
        append(session, an_input(1))
    stored = all_rows(factory)
    assert stored[0].recorded == datetime(2025, 3, 1, 0, 30, 15, 123456)
    assert abs(stored[1].recorded - datetime.now(UTC).replace(tzinfo=None)) < timedelta(hours=1)
    with factory() as session:
        assert verify(session).ok


def test_who_looked_at_a_patient_is_one_indexed_query(engine: Engine) -> None:
    factory = session_factory(engine)
    with unit_of_work(factory) as session:
        append(session, an_input(0, patients=["Patient/a", "Patient/b", "Patient/a"]))
        append(session, an_input(1, patients=["Patient/b"]))
        append(session, an_input(2, patients=[]))
    with factory() as session:
        links = session.execute(select(AuditPatientRow.patient, AuditPatientRow.seq)).all()
        assert sorted(map(tuple, links)) == [("Patient/a", 1), ("Patient/b", 1), ("Patient/b", 2)]
        assert [r.seq for r in accesses_to_patient(session, "Patient/b")] == [2, 1]
        assert [r.seq for r in accesses_to_patient(session, "Patient/b", before_seq=2)] == [1]
        assert accesses_to_patient(session, "Patient/zzz") == []
        assert [r.seq for r in latest(session, 2)] == [2, 3]
