"""Comparisons: for each candidate pair, which agreement level a field reaches.

A comparison turns the pairs (row indices ``i``, ``j`` into one ``Records`` table) into an int8
array of levels: 0 = a value is missing (the field says nothing, weight 0), 1 = the strongest
agreement, ..., K = disagreement. Levels are ordered and mutually exclusive, as the Fellegi-Sunter
model with comparison levels needs (each pair falls in exactly one). Everything is vectorised:
exact agreement is an integer compare on factorised codes, fuzzy agreement uses RapidFuzz's
pairwise ``cpdist`` (C loops), dates compare parsed integer parts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler
from rapidfuzz.process import cpdist

from yilian.mpi.records import IntArray, ObjArray, Records, factorize

Levels = npt.NDArray[np.int8]
LevelFn = Callable[[Records, IntArray, IntArray], Levels]


@dataclass(frozen=True)
class Comparison:
    """One field's comparison: level labels (level 1 first) and the function computing them.

    ``tf_column``: the exact level (1) gets a term-frequency adjustment on that column, so that
    agreeing on a rare value (欧阳) counts for more than agreeing on a common one (王).
    """

    name: str
    labels: tuple[str, ...]
    compute: LevelFn
    tf_column: str | None = None

    @property
    def n_levels(self) -> int:
        """Levels including level 0 (missing)."""
        return len(self.labels) + 1


def _missing(codes: IntArray, i: IntArray, j: IntArray) -> npt.NDArray[np.bool_]:
    return (codes[i] < 0) | (codes[j] < 0)


def similarity(strings: ObjArray, i: IntArray, j: IntArray, scorer: str) -> npt.NDArray[np.float64]:
    """Pairwise string similarity in [0, 1] (``jaro_winkler``) or edit distance (``damerau``)."""
    if len(i) == 0:
        return np.zeros(0)
    if scorer == "jaro_winkler":
        return np.asarray(
            cpdist(list(strings[i]), list(strings[j]), scorer=JaroWinkler.normalized_similarity),
            dtype=np.float64,
        )
    return np.asarray(
        cpdist(list(strings[i]), list(strings[j]), scorer=DamerauLevenshtein.distance),
        dtype=np.float64,
    )


def _assign(
    n: int, missing: npt.NDArray[np.bool_], conditions: Sequence[npt.NDArray[np.bool_]]
) -> Levels:
    """Level = 1 + index of the first true condition, else the last level; 0 where missing."""
    out = np.full(n, len(conditions) + 1, dtype=np.int8)
    for level in range(len(conditions), 0, -1):
        out[conditions[level - 1]] = level
    out[missing] = 0
    return out


def exact(name: str, column: str, *, tf: bool = False) -> Comparison:
    """Agree / disagree."""

    def compute(records: Records, i: IntArray, j: IntArray) -> Levels:
        codes = records.codes(column)
        return _assign(len(i), _missing(codes, i, j), [codes[i] == codes[j]])

    return Comparison(name, ("exact", "different"), compute, column if tf else None)


def fuzzy_string(
    name: str, column: str, thresholds: Sequence[float] = (0.92, 0.8), *, tf: bool = True
) -> Comparison:
    """Exact, then Jaro-Winkler similarity bands (typos, dropped letters), then different."""

    def compute(records: Records, i: IntArray, j: IntArray) -> Levels:
        codes = records.codes(column)
        missing = _missing(codes, i, j)
        same = codes[i] == codes[j]
        sim = np.zeros(len(i))
        todo = np.flatnonzero(~missing & ~same)
        sim[todo] = similarity(records.column(column), i[todo], j[todo], "jaro_winkler")
        return _assign(len(i), missing, [same, *[sim >= t for t in thresholds]])

    labels = ("exact", *[f"jaro-winkler >= {t:g}" for t in thresholds], "different")
    return Comparison(name, labels, compute, column if tf else None)


def edit_distance(name: str, column: str, max_edits: Sequence[int] = (1, 2)) -> Comparison:
    """Exact, then at most k edits (Damerau-Levenshtein: a transposition is one edit)."""

    def compute(records: Records, i: IntArray, j: IntArray) -> Levels:
        codes = records.codes(column)
        missing = _missing(codes, i, j)
        same = codes[i] == codes[j]
        dist = np.full(len(i), 1e9)
        todo = np.flatnonzero(~missing & ~same)
        dist[todo] = similarity(records.column(column), i[todo], j[todo], "damerau")
        return _assign(len(i), missing, [same, *[dist <= k for k in max_edits]])

    labels = ("exact", *[f"<= {k} edit{'s' if k > 1 else ''}" for k in max_edits], "different")
    return Comparison(name, labels, compute)


def date_parts(values: ObjArray) -> tuple[IntArray, IntArray, IntArray]:
    """Year, month, day of YYYYMMDD / YYYY-MM-DD strings; -1 where not in that shape.

    Parts are kept even when they do not form a calendar date (a typo can make month 13), since
    the comparison is about how two recorded strings differ, not about validity.
    """
    n = len(values)
    year, month, day = (np.full(n, -1, dtype=np.int64) for _ in range(3))
    for k, v in enumerate(values):
        if v is None:
            continue
        digits = v.replace("-", "")
        if len(digits) == 8 and digits.isascii() and digits.isdigit():
            year[k], month[k], day[k] = int(digits[:4]), int(digits[4:6]), int(digits[6:])
    return year, month, day


def birth_date(name: str, column: str) -> Comparison:
    """Exact; one typo or adjacent transposition; day/month swapped; year off by one; different.

    These are the ways a date of birth is mis-keyed at registration: a wrong digit, two digits
    swapped, the day and month swapped (DD/MM vs MM/DD forms), a year off by one (age-based
    reckoning, 虚岁) (issue #6).
    """

    def compute(records: Records, i: IntArray, j: IntArray) -> Levels:
        y, m, d = records.derive(f"date_parts:{column}", lambda r: date_parts(r.column(column)))
        codes = records.codes(column)
        missing = _missing(codes, i, j)
        same = codes[i] == codes[j]
        dist = np.full(len(i), 1e9)
        todo = np.flatnonzero(~missing & ~same)
        strings = records.column(column)
        dist[todo] = similarity(strings, i[todo], j[todo], "damerau")
        parsed = (y[i] >= 0) & (y[j] >= 0)
        swap = parsed & (y[i] == y[j]) & (m[i] == d[j]) & (d[i] == m[j])
        year_off = parsed & (np.abs(y[i] - y[j]) == 1) & (m[i] == m[j]) & (d[i] == d[j])
        return _assign(len(i), missing, [same, dist <= 1, swap | year_off, dist <= 2])

    labels = (
        "exact",
        "1 typo or transposition",
        "day/month swap or year +-1",
        "2 edits",
        "different",
    )
    return Comparison(name, labels, compute)


def phone(name: str, column: str) -> Comparison:
    """Exact; same last 8 digits (a prefix differs); one typo or transposition; different."""

    def compute(records: Records, i: IntArray, j: IntArray) -> Levels:
        codes = records.codes(column)
        tails = records.derive(
            f"last8:{column}", lambda r: factorize(last_digits(r.column(column), 8))
        )
        missing = _missing(codes, i, j)
        same = codes[i] == codes[j]
        tail = (tails[i] >= 0) & (tails[i] == tails[j])
        dist = np.full(len(i), 1e9)
        todo = np.flatnonzero(~missing & ~same & ~tail)
        dist[todo] = similarity(records.column(column), i[todo], j[todo], "damerau")
        return _assign(len(i), missing, [same, tail, dist <= 1])

    return Comparison(
        name, ("exact", "same last 8 digits", "1 typo or transposition", "different"), compute
    )


def last_digits(values: ObjArray, k: int) -> ObjArray:
    """The last ``k`` digits of each value (None if it has fewer)."""
    out = np.empty(len(values), dtype=object)
    for n, v in enumerate(values):
        digits = "".join(ch for ch in v if ch.isdigit()) if v is not None else ""
        out[n] = digits[-k:] if len(digits) >= k else None
    return out
