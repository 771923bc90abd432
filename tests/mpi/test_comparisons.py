"""Comparison levels: examples for each mis-keying pattern, and properties every comparison has."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from yilian.mpi.comparisons import (
    Comparison,
    birth_date,
    edit_distance,
    exact,
    fuzzy_string,
    last_digits,
    phone,
)
from yilian.mpi.records import Records


def levels(comparison: Comparison, left: str | None, right: str | None, column: str) -> int:
    records = Records.from_rows([{column: left}, {column: right}], [column])
    return int(comparison.compute(records, np.array([0]), np.array([1]))[0])


def test_birth_date_levels() -> None:
    dob = birth_date("dob", "dob")
    assert levels(dob, "1956-04-09", "1956-04-09", "dob") == 1
    assert levels(dob, "19560409", "19560490", "dob") == 2  # adjacent digits transposed
    assert levels(dob, "19560409", "19560408", "dob") == 2  # one wrong digit
    assert levels(dob, "1956-04-09", "1956-09-04", "dob") == 3  # day and month swapped
    assert levels(dob, "1956-04-09", "1957-04-09", "dob") == 2  # one digit: also 1 edit
    assert levels(dob, "1959-04-09", "1960-04-09", "dob") == 3  # year +1 across a decade
    assert levels(dob, "1956-04-09", "1971-12-30", "dob") == 5
    assert levels(dob, None, "1971-12-30", "dob") == 0


def test_phone_levels() -> None:
    ph = phone("phone", "phone")
    assert levels(ph, "13912345678", "13912345678", "phone") == 1
    assert levels(ph, "02162345678", "62345678", "phone") == 2  # area code dropped
    assert levels(ph, "13912345678", "13912346578", "phone") == 3  # transposition
    assert levels(ph, "13912345678", "18600001111", "phone") == 4
    assert levels(ph, "", "18600001111", "phone") == 0


def test_string_and_edit_levels() -> None:
    name = fuzzy_string("n", "n", (0.92, 0.8))
    assert levels(name, "mitchell", "mitchell", "n") == 1
    assert levels(name, "mitchell", "mitchel", "n") == 2
    assert levels(name, "mitchell", "zzz", "n") == 4
    ssn = edit_distance("s", "s", (1, 2))
    assert levels(ssn, "1804974", "1804947", "s") == 2  # a transposition is one edit
    assert levels(ssn, "1804974", "1804900", "s") == 3
    assert levels(exact("e", "e"), "a", "b", "e") == 2


def test_last_digits() -> None:
    values = np.array(["021-6234 5678", "123", None], dtype=object)
    assert last_digits(values, 8).tolist() == ["62345678", None, None]


text = st.one_of(st.none(), st.text(alphabet="0123456789-abc王李", max_size=12))
COMPARISONS = [
    fuzzy_string("v", "v"),
    edit_distance("v", "v"),
    birth_date("v", "v"),
    phone("v", "v"),
    exact("v", "v"),
]


@given(st.lists(st.tuples(text, text), min_size=1, max_size=20))
def test_levels_are_symmetric_in_range_and_zero_only_when_missing(
    pairs: list[tuple[str | None, str | None]],
) -> None:
    rows = [{"v": v} for pair in pairs for v in pair]
    records = Records.from_rows(rows, ["v"])
    i = np.arange(0, len(rows), 2)
    j = i + 1
    values = records.column("v")
    for comparison in COMPARISONS:
        forward = comparison.compute(records, i, j)
        assert (forward == comparison.compute(records, j, i)).all()
        assert ((forward >= 0) & (forward < comparison.n_levels)).all()
        missing = np.array(
            [values[a] is None or values[b] is None for a, b in zip(i, j, strict=True)]
        )
        assert ((forward == 0) == missing).all()
        same = np.array(
            [values[a] is not None and values[a] == values[b] for a, b in zip(i, j, strict=True)]
        )
        assert (forward[same] == 1).all()
