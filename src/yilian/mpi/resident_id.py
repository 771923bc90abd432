"""The Chinese citizen identity number (居民身份证号, GB 11643-1999 《公民身份号码》).

18 characters: a 6-digit address code (GB/T 2260, where the household was first registered), the
8-digit birth date YYYYMMDD, a 3-digit sequence (odd = male, even = female) and one check character
computed with ISO 7064:1983 MOD 11-2. Source: /work/shared/domain/china-rules.md §6 (structure,
weights, check characters, worked examples) and /work/shared/domain/identity-and-analytics.md
"Resident ID" (error detection).

Error detection, which the matcher relies on (a failed check means a typo, not another person):
the weights are 2^(17-i) mod 11, all non-zero and pairwise different modulo the prime 11, so every
single-character substitution and every transposition of two different characters at positions i
and i+1 or i and i+2 changes the sum modulo 11 and is detected; two random substitutions escape
with probability about 1/11.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from yilian.fhir.systems import IDENTIFIER_VERIFICATION

# GB 11643-1999 / ISO 7064 MOD 11-2 (china-rules.md §6): W_i = 2^(17-i) mod 11 for i = 0..16.
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# Y = S mod 11 maps to the check character "10X98765432"[Y] (china-rules.md §6).
CHECK_CHARACTERS = "10X98765432"
# china-rules.md §6: "valid date (not future, not before 1800)"; the standard's own worked
# example 440524188001010014 is born 1880-01-01, so 1900 would reject a valid number.
EARLIEST_BIRTH_DATE = dt.date(1800, 1, 1)
# GB/T 2260 first-level (province) codes begin with 1 to 8 (11 Beijing ... 65 Xinjiang, 71 Taiwan,
# 81/82 Hong Kong/Macau); the full county table is not shipped because withdrawn codes stay valid
# on issued numbers (identity-and-analytics.md "Resident ID").
_REGION_FIRST_DIGITS = "12345678"


class ResidentIdError(ValueError):
    """A resident identity number breaks a GB 11643-1999 rule; ``rule`` names which."""

    rule = "gb11643"

    def __init__(self, message: str) -> None:
        super().__init__(f"{message} (GB 11643-1999)")


class ResidentIdLengthError(ResidentIdError):
    rule = "gb11643-length"


class ResidentIdFormatError(ResidentIdError):
    rule = "gb11643-format"


class ResidentIdRegionError(ResidentIdError):
    rule = "gb11643-region"


class ResidentIdBirthDateError(ResidentIdError):
    rule = "gb11643-birth-date"


class ResidentIdCheckDigitError(ResidentIdError):
    rule = "gb11643-check-digit"


@dataclass(frozen=True)
class ResidentId:
    """A parsed, valid resident identity number (check character normalised to upper case)."""

    value: str
    region_code: str
    birth_date: dt.date
    sequence: str
    sex: str  # FHIR administrative-gender code: "male" (odd sequence) or "female" (even)


def check_digit(first17: str) -> str:
    """The MOD 11-2 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ResidentIdFormatError(f"expected 17 digits to compute a check digit, got {first17!r}")
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % 11]


def has_valid_check_digit(value: str) -> bool:
    """True if ``value`` is 17 digits and the check character MOD 11-2 asks for (x or X)."""
    if len(value) != 18 or not value[:17].isascii() or not value[:17].isdigit():
        return False
    return check_digit(value[:17]) == value[17].upper()


def parse_resident_id(value: str, *, today: dt.date | None = None) -> ResidentId:
    """Check every GB 11643-1999 rule and return the facts the number encodes.

    Raises a ``ResidentIdError`` subclass whose ``rule`` and message name the first rule broken,
    in the order length, characters, region code, birth date, check character.
    """
    if len(value) != 18:
        raise ResidentIdLengthError(
            f"A resident identity number has 18 characters, {value!r} has {len(value)}"
        )
    body, last = value[:17], value[17]
    if not (body.isascii() and body.isdigit()) or last not in "0123456789Xx":
        raise ResidentIdFormatError(
            f"A resident identity number is 17 digits and a digit or X, got {value!r}"
        )
    region = body[:6]
    if region[0] not in _REGION_FIRST_DIGITS:
        raise ResidentIdRegionError(
            f"Address code {region} is not a GB/T 2260 region code (first digit 1-8)"
        )
    birth = _birth_date(body[6:14], today or dt.date.today())
    expected = check_digit(body)
    if last.upper() != expected:
        raise ResidentIdCheckDigitError(
            f"Check character of {value!r} should be {expected!r} (ISO 7064 MOD 11-2); "
            "the number has a typo"
        )
    sequence = body[14:17]
    sex = "male" if int(sequence) % 2 else "female"
    return ResidentId(body + expected, region, birth, sequence, sex)


def _birth_date(text: str, today: dt.date) -> dt.date:
    try:
        birth = dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise ResidentIdBirthDateError(f"Birth date {text} is not a calendar date") from None
    if birth > today:
        raise ResidentIdBirthDateError(f"Birth date {birth.isoformat()} is in the future")
    if birth < EARLIEST_BIRTH_DATE:
        raise ResidentIdBirthDateError(
            f"Birth date {birth.isoformat()} is before {EARLIEST_BIRTH_DATE.isoformat()}"
        )
    return birth


def upgrade_legacy(value: str) -> str:
    """Turn a 15-digit GB 11643-1989 number into the 18-character form (china-rules.md §6)."""
    if len(value) != 15 or not value.isascii() or not value.isdigit():
        raise ResidentIdFormatError(
            f"A legacy resident identity number is 15 digits, got {value!r}"
        )
    first17 = f"{value[:6]}19{value[6:]}"
    return first17 + check_digit(first17)


# The Identifier.type coding of a resident ID accepted although it breaks a rule above
# (``YILIAN_RESIDENT_IDS=unverified``); such a number is never matched on.
UNVERIFIED_CODING = {"system": IDENTIFIER_VERIFICATION, "code": "unverified"}


def is_unverified(identifier: dict[str, Any]) -> bool:
    """Whether an Identifier carries the ``unverified`` type coding."""
    codings = (identifier.get("type") or {}).get("coding") or []
    return any(
        isinstance(c, dict)
        and c.get("system") == IDENTIFIER_VERIFICATION
        and c.get("code") == "unverified"
        for c in codings
    )
