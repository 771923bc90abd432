"""Blocking: which pairs are compared at all.

Comparing every pair is quadratic; a blocking rule compares only records that share a key (same
birth date, same phone, same surname pinyin and birth year, ...). Several rules are unioned, so a
true pair is missed only if a typo breaks every key. Pair generation is vectorised: records are
sorted by key and, for d = 1, 2, ..., each record is paired with the one d places later while the
keys still agree (the set of such positions only shrinks, so the loop ends after the largest
block). Blocks larger than ``max_block`` are skipped: a key shared by that many people (a
placeholder phone, a care home's address) separates nobody.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from yilian.mpi.records import IntArray, Records

KeyFn = Callable[[Records], IntArray]


@dataclass(frozen=True)
class BlockingRule:
    """Records whose codes agree on all ``columns`` (none missing) are candidate pairs."""

    name: str
    columns: tuple[str, ...]

    def keys(self, records: Records) -> IntArray:
        key = np.zeros(len(records), dtype=np.int64)
        missing = np.zeros(len(records), dtype=bool)
        for column in self.columns:
            codes = records.codes(column)
            missing |= codes < 0
            # Re-factorise after each combination so the key never overflows int64.
            combined = key * (int(codes.max(initial=0)) + 2) + codes + 1
            key = np.unique(combined, return_inverse=True)[1].astype(np.int64)
        key[missing] = -1
        return key


def pairs_sharing_key(
    keys: IntArray, source: IntArray, *, link: bool, max_block: int = 1000
) -> IntArray:
    """Pair codes ``lo * n + hi`` of records with equal keys (keys < 0 never pair)."""
    n = len(keys)
    present = np.flatnonzero(keys >= 0)
    if len(present) < 2:
        return np.zeros(0, dtype=np.int64)
    values, counts = np.unique(keys[present], return_counts=True)
    small = values[counts <= max_block]
    present = present[np.isin(keys[present], small)]
    order = present[np.argsort(keys[present], kind="stable")]
    sorted_keys = keys[order]
    chunks: list[IntArray] = []
    alive = np.arange(len(order) - 1)
    d = 1
    while len(alive):
        alive = alive[alive + d < len(order)]
        alive = alive[sorted_keys[alive] == sorted_keys[alive + d]]
        a, b = order[alive], order[alive + d]
        if link:
            keep = source[a] != source[b]
            a, b = a[keep], b[keep]
        chunks.append(np.minimum(a, b) * n + np.maximum(a, b))
        d += 1
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)


def candidate_pairs(
    records: Records, rules: Sequence[BlockingRule], *, max_block: int = 1000
) -> tuple[IntArray, IntArray]:
    """The union of every rule's pairs, as row-index arrays ``i < j``."""
    n = len(records)
    link = records.is_link
    codes = [
        pairs_sharing_key(rule.keys(records), records.source, link=link, max_block=max_block)
        for rule in rules
    ]
    union = np.unique(np.concatenate(codes)) if codes else np.zeros(0, dtype=np.int64)
    return union // n, union % n


def random_pairs(records: Records, count: int, seed: int) -> tuple[IntArray, IntArray]:
    """Uniformly random distinct pairs (across sources when linking), for estimating u."""
    rng = np.random.default_rng(seed)
    if records.is_link:
        left, right = np.flatnonzero(records.source == 0), np.flatnonzero(records.source == 1)
        return rng.choice(left, count), rng.choice(right, count)
    n = len(records)
    i = rng.integers(0, n, count)
    j = (i + rng.integers(1, n, count)) % n  # never equal to i
    return i, j


def total_pairs(records: Records) -> int:
    """How many pairs exist at all (the denominator of the prior match probability)."""
    if records.is_link:
        left = int(np.count_nonzero(records.source == 0))
        return left * (len(records) - left)
    n = len(records)
    return n * (n - 1) // 2
