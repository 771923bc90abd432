"""Blocking: the vectorised pair generator finds exactly the pairs a double loop finds."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from yilian.mpi.blocking import (
    BlockingRule,
    candidate_pairs,
    pairs_sharing_key,
    random_pairs,
    total_pairs,
)
from yilian.mpi.records import Records


@given(
    st.lists(st.tuples(st.integers(-1, 4), st.integers(0, 1)), max_size=40),
    st.booleans(),
    st.integers(2, 6),
)
def test_pairs_match_brute_force(rows: list[tuple[int, int]], link: bool, max_block: int) -> None:
    keys = np.array([k for k, _ in rows], dtype=np.int64)
    source = np.array([s for _, s in rows], dtype=np.int64)
    n = len(rows)
    sizes = {k: int((keys == k).sum()) for k in set(keys.tolist())}
    expected = {
        a * n + b
        for a in range(n)
        for b in range(a + 1, n)
        if keys[a] >= 0
        and keys[a] == keys[b]
        and sizes[int(keys[a])] <= max_block
        and (not link or source[a] != source[b])
    }
    got = pairs_sharing_key(keys, source, link=link, max_block=max_block)
    assert sorted(got.tolist()) == sorted(expected)
    assert len(set(got.tolist())) == len(got)


def test_rules_are_unioned_and_missing_values_never_block() -> None:
    rows = [
        {"a": "x", "b": "1"},
        {"a": "x", "b": "2"},
        {"a": "y", "b": "2"},
        {"a": None, "b": None},
        {"a": None, "b": None},
    ]
    records = Records.from_rows(rows, ["a", "b"])
    i, j = candidate_pairs(records, [BlockingRule("a", ("a",)), BlockingRule("b", ("b",))])
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (1, 2)]
    i, j = candidate_pairs(records, [BlockingRule("a+b", ("a", "b"))])
    assert len(i) == 0


def test_link_mode_pairs_only_across_sources() -> None:
    left = Records.from_rows([{"a": "x"}, {"a": "x"}], ["a"])
    right = Records.from_rows([{"a": "x"}], ["a"])
    stacked = Records.stack(left, right)
    assert stacked.is_link
    i, j = candidate_pairs(stacked, [BlockingRule("a", ("a",))])
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 2), (1, 2)]
    assert total_pairs(stacked) == 2
    ri, rj = random_pairs(stacked, 50, seed=1)
    assert (stacked.source[ri] == 0).all() and (stacked.source[rj] == 1).all()


def test_random_dedupe_pairs_are_distinct_records() -> None:
    records = Records.from_rows([{"a": str(k)} for k in range(7)], ["a"])
    i, j = random_pairs(records, 500, seed=3)
    assert (i != j).all() and total_pairs(records) == 21
