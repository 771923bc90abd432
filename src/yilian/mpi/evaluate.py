"""Quality of a set of links against ground truth: precision, recall, F1 over record pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from yilian.mpi.records import IntArray, ObjArray, Records, factorize


@dataclass(frozen=True)
class Quality:
    true_pairs: int
    predicted_pairs: int
    true_positives: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def true_pair_codes(records: Records, entity: ObjArray) -> IntArray:
    """Codes ``lo * n + hi`` of all pairs of one entity (only across sources when linking)."""
    n = len(records)
    codes = factorize(entity)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    chunks = []
    alive = np.arange(n - 1)
    d = 1
    while len(alive):
        alive = alive[alive + d < n]
        alive = alive[(sorted_codes[alive] == sorted_codes[alive + d]) & (sorted_codes[alive] >= 0)]
        a, b = order[alive], order[alive + d]
        if records.is_link:
            keep = records.source[a] != records.source[b]
            a, b = a[keep], b[keep]
        chunks.append(np.minimum(a, b) * n + np.maximum(a, b))
        d += 1
    return np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.int64)


def pair_quality(records: Records, entity: ObjArray, i: IntArray, j: IntArray) -> Quality:
    """Compare predicted pairs (i, j) with the pairs the entity column implies."""
    n = len(records)
    truth = true_pair_codes(records, entity)
    predicted = np.unique(np.minimum(i, j) * n + np.maximum(i, j))
    hits = int(np.isin(predicted, truth, assume_unique=True).sum())
    return Quality(len(truth), len(predicted), hits)
