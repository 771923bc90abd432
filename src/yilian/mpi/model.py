"""The Fellegi-Sunter model: estimation (u from random pairs, m and the prior by EM) and scoring.

For a pair with comparison vector gamma, the match weight is
``log2(lambda / (1 - lambda)) + sum_f log2(m_f[gamma_f] / u_f[gamma_f])`` plus term-frequency
adjustments, and the match probability is ``1 / (1 + 2 ** -weight)`` (Fellegi & Sunter 1969; the
parametrisation with comparison levels and TF adjustments is the one Splink documents).

Estimation, as in Splink: u (the level frequencies among non-matching pairs) from uniformly random
pairs, which are almost all non-matches; m and lambda (the probability that two random records
match) by expectation-maximisation over the blocked candidate pairs, with u held fixed. Two
refinements of ours, both cheap:

* lambda is a probability over *all* pairs, so the EM update divides the expected number of
  matches among the candidates by the number of all pairs; pairs outside the blocks are taken as
  non-matches. With u from random pairs this makes the E-step the exact posterior of a random pair.
* A random sample still contains a few true matches (febrl3: 1 pair in 1,900), which inflates u of
  strong levels such as an identical ID number by orders of magnitude. Random pairs are a mixture
  ``lambda * m + (1 - lambda) * u``, so each iteration solves that for u (floored at half a count).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from yilian.mpi.blocking import BlockingRule, candidate_pairs, random_pairs, total_pairs
from yilian.mpi.comparisons import Comparison
from yilian.mpi.records import IntArray, ObjArray, Records

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
CertainFn = Callable[[Records, IntArray, IntArray], BoolArray]

# Decision thresholds on the match probability (issue #6: auto-link above the upper threshold, a
# review queue between the two, separate below). 0.5 is the Bayes decision for equal costs of a
# false link and a missed link; the review band is where the evidence is less than 19:1 either way.
LINK_THRESHOLD = 0.5
UPPER_THRESHOLD = 0.95
LOWER_THRESHOLD = 0.05
# Fellegi-Sunter multiplies the evidence of fields as if independent; members of one household
# agree on surname, address and phone together (twins on the birth date too), so their combined
# weight is overstated. A pair at a ``review_at_most`` level is capped at this weight (match
# probability 1/3): a steward decides, the matcher never links it alone.
REVIEW_AT_MOST_WEIGHT = -1.0
# A pair at all the levels of a ``separate_when_all`` rule is capped below the lower threshold:
# evidence the model cannot weigh (a sibling shares surname, address and phone but neither given
# name nor birth date) and that would otherwise fill the review queue with families.
SEPARATE_WEIGHT = math.log2(LOWER_THRESHOLD / (1.0 - LOWER_THRESHOLD)) - 1.0


@dataclass(frozen=True)
class ModelSpec:
    """What to compare and how to block: the part of a model written by people."""

    name: str
    comparisons: tuple[Comparison, ...]
    blocking: tuple[BlockingRule, ...]
    prepare: Callable[[Records], None] = lambda records: None
    certain: CertainFn | None = None  # pairs that are matches by rule (same valid resident ID)
    # (comparison name, level) pairs that may send a pair to review but never auto-link it; see
    # ``REVIEW_AT_MOST_WEIGHT``.
    review_at_most: tuple[tuple[str, int], ...] = ()
    # (comparison name, level) pairs that, all together, keep a pair separate; see
    # ``SEPARATE_WEIGHT``.
    separate_when_all: tuple[tuple[str, int], ...] = ()
    max_block: int = 1000


@dataclass
class Parameters:
    """The estimated part of a model: lambda, and m and u per comparison level (index 0 unused)."""

    prior: float
    m: list[FloatArray]
    u: list[FloatArray]

    def weights(self) -> list[FloatArray]:
        """log2(m/u) per level; level 0 (missing) weighs nothing."""
        out = []
        for m, u in zip(self.m, self.u, strict=True):
            w = np.log2(np.maximum(m, 1e-300) / np.maximum(u, 1e-300))
            w[0] = 0.0
            out.append(w)
        return out


@dataclass
class TrainingReport:
    iterations: int
    converged: bool
    candidate_pairs: int
    random_pairs: int
    expected_matches: float


@dataclass
class Scored:
    """Candidate pairs with their comparison levels, match weight and probability."""

    i: IntArray
    j: IntArray
    gamma: npt.NDArray[np.int8]
    weight: FloatArray
    probability: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        self.probability = 1.0 / (1.0 + np.exp2(-np.clip(self.weight, -1000, 1000)))

    def links(self, threshold: float = LINK_THRESHOLD) -> BoolArray:
        return self.probability >= threshold


def comparison_vectors(
    spec: ModelSpec, records: Records, i: IntArray, j: IntArray
) -> npt.NDArray[np.int8]:
    """The level of every comparison for every pair (pairs x comparisons)."""
    gamma = np.zeros((len(i), len(spec.comparisons)), dtype=np.int8)
    for k, comparison in enumerate(spec.comparisons):
        gamma[:, k] = comparison.compute(records, i, j)
    return gamma


def _level_frequencies(
    gamma: npt.NDArray[np.int8], sizes: Sequence[int], weights: FloatArray | None = None
) -> list[FloatArray]:
    """Per comparison, the (weighted) share of pairs at each level, among non-missing levels."""
    out = []
    for k, size in enumerate(sizes):
        counts = np.bincount(gamma[:, k], weights=weights, minlength=size).astype(np.float64)
        counts[0] = 0.0
        total = counts.sum()
        out.append(counts / total if total > 0 else np.full(size, 1.0 / max(size - 1, 1)))
    return out


def _initial_m(size: int) -> FloatArray:
    """Starting m: most matches agree exactly, the rest spread over the weaker levels."""
    m = np.zeros(size)
    m[1] = 0.9
    m[2:] = 0.1 / max(size - 2, 1)
    return m


class Matcher:
    """A Fellegi-Sunter matcher for one ``ModelSpec``: train on records, then score pairs."""

    def __init__(self, spec: ModelSpec, parameters: Parameters | None = None) -> None:
        self.spec = spec
        self.parameters = parameters

    @property
    def sizes(self) -> list[int]:
        return [c.n_levels for c in self.spec.comparisons]

    def candidates(self, records: Records) -> tuple[IntArray, IntArray]:
        return candidate_pairs(records, self.spec.blocking, max_block=self.spec.max_block)

    def train(
        self,
        records: Records,
        *,
        sample: int = 300_000,
        seed: int = 0,
        max_iterations: int = 100,
        tolerance: float = 1e-6,
        pairs: tuple[IntArray, IntArray] | None = None,
    ) -> TrainingReport:
        """Estimate u from ``sample`` random pairs, then m and lambda by EM on the candidates."""
        self.spec.prepare(records)
        all_pairs = total_pairs(records)
        n_random = min(sample, all_pairs)
        ri, rj = random_pairs(records, n_random, seed)
        u_random = _level_frequencies(comparison_vectors(self.spec, records, ri, rj), self.sizes)
        i, j = pairs if pairs is not None else self.candidates(records)
        gamma = comparison_vectors(self.spec, records, i, j)
        floor = 0.5 / n_random
        prior = min(0.5, len(records) / all_pairs)
        m = [_initial_m(s) for s in self.sizes]
        u = [np.maximum(x, floor) for x in u_random]
        iterations, converged, expected = 0, False, 0.0
        for iterations in range(1, max_iterations + 1):  # noqa: B007 - reported below
            log_bf = np.zeros(len(i))
            for k in range(len(m)):
                ratio = np.log(np.maximum(m[k], 1e-300) / u[k])
                ratio[0] = 0.0
                log_bf += ratio[gamma[:, k]]
            posterior = 1.0 / (1.0 + np.exp(-(log_bf + math.log(prior / (1.0 - prior)))))
            expected = float(posterior.sum())
            # A level no match reached gets half a match's share, not zero (a weight of -inf
            # would veto a link on one field).
            new_m = [
                np.maximum(x, 0.5 / max(expected, 1.0))
                for x in _level_frequencies(gamma, self.sizes, posterior)
            ]
            prior = min(max(expected / all_pairs, 1e-12), 0.5)
            u = [
                np.maximum((ur - prior * mk) / (1.0 - prior), floor)
                for ur, mk in zip(u_random, new_m, strict=True)
            ]
            u = [x / x[1:].sum() for x in u]
            change = max(float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True))
            m = new_m
            if change < tolerance:
                converged = True
                break
        self.parameters = Parameters(prior, m, u)
        return TrainingReport(iterations, converged, len(i), n_random, expected)

    def score(
        self,
        records: Records,
        i: IntArray,
        j: IntArray,
        *,
        term_frequencies: Mapping[str, TermFrequency] | None = None,
    ) -> Scored:
        """Match weight (log2 odds) of each pair, with term-frequency adjustments.

        The frequencies come from ``records`` themselves (a whole population, the batch job), or
        from ``term_frequencies`` when ``records`` are a handful of candidates (real time).
        """
        if self.parameters is None:
            raise RuntimeError("the matcher has no parameters: train it or load them first")
        params = self.parameters
        self.spec.prepare(records)
        gamma = comparison_vectors(self.spec, records, i, j)
        weight = np.full(len(i), math.log2(params.prior / (1.0 - params.prior)))
        for k, w in enumerate(params.weights()):
            weight += w[gamma[:, k]]
        for k, comparison in enumerate(self.spec.comparisons):
            if comparison.tf_column is not None:
                stored = (term_frequencies or {}).get(comparison.tf_column)
                tf = (
                    stored.of(records.column(comparison.tf_column))
                    if stored is not None
                    else _own_frequencies(records, comparison.tf_column)
                )
                weight += _tf_adjustment(tf, params.u[k][1], gamma[:, k], i)
        names = [c.name for c in self.spec.comparisons]
        for name, level in self.spec.review_at_most:
            capped = gamma[:, names.index(name)] == level
            weight[capped] = np.minimum(weight[capped], REVIEW_AT_MOST_WEIGHT)
        if self.spec.separate_when_all:
            apart = np.ones(len(i), dtype=bool)
            for name, level in self.spec.separate_when_all:
                apart &= gamma[:, names.index(name)] == level
            weight[apart] = np.minimum(weight[apart], SEPARATE_WEIGHT)
        if self.spec.certain is not None:
            weight[self.spec.certain(records, i, j)] = np.inf
        return Scored(i, j, gamma, weight)

    def predict(self, records: Records) -> Scored:
        """Block, compare and score every candidate pair."""
        self.spec.prepare(records)
        i, j = self.candidates(records)
        return self.score(records, i, j)


@dataclass(frozen=True)
class TermFrequency:
    """A population's frequency of each value of one column, for scoring a few records.

    ``counts`` keeps the values seen at least twice; any other value counts once (a value the
    population has not seen is as rare as the rarest it has).
    """

    total: int
    counts: Mapping[str, int]

    @classmethod
    def of_column(cls, values: ObjArray, *, min_count: int = 2) -> TermFrequency:
        present = [v for v in values.tolist() if v is not None]
        found = Counter(present)
        return cls(len(present), {v: c for v, c in found.items() if c >= min_count})

    def of(self, values: ObjArray) -> FloatArray:
        """Each record's value frequency (share of the population)."""
        total = max(self.total, 1)
        return np.array(
            [self.counts.get(v, 1) / total if v is not None else 0.0 for v in values.tolist()]
        )


def _own_frequencies(records: Records, column: str) -> FloatArray:
    """Each record's value frequency within ``records``."""
    codes = records.codes(column)
    present = codes[codes >= 0]
    counts = np.bincount(present, minlength=int(codes.max(initial=-1)) + 1).astype(np.float64)
    shares = counts / max(len(present), 1)
    return np.where(codes >= 0, shares[np.maximum(codes, 0)], 0.0)


def _tf_adjustment(
    tf: FloatArray, u_exact: float, level: npt.NDArray[np.int8], i: IntArray
) -> FloatArray:
    """log2(u_exact / tf(value)) on exact agreement: rare values weigh more (Splink's form)."""
    out = np.zeros(len(i))
    exact = np.flatnonzero(level == 1)
    out[exact] = np.log2(u_exact / np.maximum(tf[i[exact]], 1e-12))
    return out
