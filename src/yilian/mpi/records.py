"""A column table of person records, the one shape every matcher stage reads.

Dedupe and link are the same problem here: for linking, the two sources are stacked into one
table with a ``source`` array, and blocking only emits pairs whose sources differ. That lets every
string column share one vocabulary (codes are comparable across sources) and keeps the pair
indices plain row numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
ObjArray = npt.NDArray[np.object_]
T = TypeVar("T")


def object_array(values: Iterable[str | None]) -> ObjArray:
    """An object array of strings, with empty or blank strings turned into None."""
    cleaned = [(v.strip() or None) if v else None for v in values]
    out = np.empty(len(cleaned), dtype=object)
    out[:] = cleaned
    return out


def factorize(values: ObjArray) -> IntArray:
    """Integer codes for equal strings (``-1`` for None), so equality is an integer compare."""
    codes: dict[str | None, int] = {v: k for k, v in enumerate(dict.fromkeys(values.tolist()))}
    codes[None] = -1
    return np.fromiter(map(codes.__getitem__, values.tolist()), dtype=np.int64, count=len(values))


@dataclass
class Records:
    """Person records as columns of strings (None = missing) plus derived feature columns."""

    columns: dict[str, ObjArray]
    ids: ObjArray
    source: IntArray
    _codes: dict[str, IntArray] = field(default_factory=dict, repr=False)
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[Mapping[str, str | None]],
        columns: Sequence[str],
        *,
        id_column: str | None = None,
        source: Sequence[int] | None = None,
    ) -> Records:
        cols = {c: object_array(r.get(c) for r in rows) for c in columns}
        ids = (
            object_array(r.get(id_column) for r in rows)
            if id_column
            else object_array(str(i) for i in range(len(rows)))
        )
        src = np.zeros(len(rows), dtype=np.int64) if source is None else np.asarray(source)
        return cls(cols, ids, src.astype(np.int64))

    @classmethod
    def stack(cls, left: Records, right: Records) -> Records:
        """Two sources in one table (source 0 then 1), for linking."""
        cols = {c: np.concatenate([left.columns[c], right.columns[c]]) for c in left.columns}
        source = np.concatenate(
            [np.zeros(len(left), dtype=np.int64), np.ones(len(right), dtype=np.int64)]
        )
        return cls(cols, np.concatenate([left.ids, right.ids]), source)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def is_link(self) -> bool:
        return bool(len(self.source)) and int(self.source.max()) != int(self.source.min())

    def column(self, name: str) -> ObjArray:
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(f"record column {name!r} is missing") from None

    def add(self, name: str, values: ObjArray) -> None:
        """Add a derived column (e.g. pinyin of the name), replacing any earlier one."""
        if len(values) != len(self):
            raise ValueError(f"column {name!r} has {len(values)} values for {len(self)} records")
        self.columns[name] = values
        self._codes.pop(name, None)

    def codes(self, name: str) -> IntArray:
        """Factorised codes of a column, computed once."""
        if name not in self._codes:
            self._codes[name] = factorize(self.column(name))
        return self._codes[name]

    def derive(self, key: str, make: Callable[[Records], T]) -> T:
        """A per-record feature (parsed dates, pinyin, ...) computed once per table."""
        if key not in self._derived:
            self._derived[key] = make(self)
        return self._derived[key]  # type: ignore[no-any-return]
