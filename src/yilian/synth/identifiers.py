"""Identifier numbers for synthetic people and organisations, valid by their standards' rules.

Resident IDs follow GB 11643-1999 (china-rules.md §6) with the check character from
``yilian.mpi.resident_id``. Organisation codes follow GB 32100-2015 (unified social credit code)
with the GB 11714 organisation-code check inside it; they are synthetic: the facilities' real
codes were not found (china-rules.md §7).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

from yilian.mpi.resident_id import check_digit

# GB 32100-2015 character set (no I, O, S, V, Z) and weights 3^(i) mod 31 for positions 1..17.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11714-1997 organisation code: 8 body characters, weights below, check 11 - (S mod 11).
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def _org_code(body8: str) -> str:
    total = sum(int(c, 36) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body8 + {10: "X", 11: "0"}.get(check, str(check))


def uscc(region: str, serial: int) -> str:
    """A syntactically valid 统一社会信用代码 of a public institution (事业单位, "12")."""
    first17 = "12" + region + _org_code(f"{42500000 + serial:08d}")
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return first17 + _USCC_CHARS[(31 - total % 31) % 31]


def uscc_check_ok(value: str) -> bool:
    """True if the GB 32100 check character of ``value`` is right (used by tests)."""
    if len(value) != 18 or any(c not in _USCC_CHARS for c in value):
        return False
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(value[:17], _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31] == value[17]


class ResidentIdAllocator:
    """Hands out unique resident IDs: one sequence counter per (region, birth date, sex).

    Memory is bounded by regions x birth dates (about 40,000 keys), not by the population, so
    scale 1.0 streams. The sequence starts at a seeded offset so numbers do not all end in 001.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._next: dict[tuple[str, dt.date, str], int] = defaultdict(int)

    def allocate(self, region: str, birth: dt.date, sex: str) -> str:
        key = (region, birth, sex)
        count = self._next[key]
        if count == 0:
            count = self._rng.randrange(0, 60)
        self._next[key] = count + 1
        # odd sequence = male, even = female (china-rules.md §6); 500 numbers per sex and day.
        sequence = (2 * count + 1 if sex == "male" else 2 * count + 2) % 1000
        first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
        return first17 + check_digit(first17)


def licence_number(rng: random.Random, year: int) -> str:
    """A 医师执业证书编码-like number: 15 digits, level/type digits, year, province 31, serial."""
    return f"1{rng.randrange(1, 5)}{year:04d}31{rng.randrange(0, 10**7):07d}"
