"""Normal forms shared by index extraction and search: folded strings and date ranges.

The search side must normalise a query value with these same functions, so that what was written
to the index and what is looked up agree byte for byte.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from functools import lru_cache

OPEN_LOW = datetime.min
"""``low`` of a range with no start (a Period without ``start``): 0001-01-01T00:00:00."""

OPEN_HIGH = datetime.max
"""``high`` of a range with no end (a Period without ``end``): 9999-12-31T23:59:59.999999.

Also the clamp for a range whose true end lies beyond year 9999 (``"9999"`` covers the whole
year, whose exclusive end 10000-01-01 is not representable).
"""


@lru_cache(maxsize=65536)
def normalise_string(value: str) -> str:
    """Fold a string for the ``string`` index and ``:text`` token search.

    NFKD decomposition with the combining marks dropped (``é`` → ``e``, full-width ``Ａ`` → ``A``),
    then case folding, then runs of whitespace collapsed to one space and the ends trimmed.
    Chinese characters have no decomposition and no case, so ``王小明`` stays ``王小明`` and
    prefix / ``:contains`` matching on it works on the characters themselves.
    Search rule: https://hl7.org/fhir/R4/search.html#string (case- and accent-insensitive).
    """
    if value.isascii():
        return " ".join(value.lower().split())
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


# FHIR date / dateTime / instant (https://hl7.org/fhir/R4/datatypes.html#dateTime), lenient about
# a missing timezone and a missing seconds part so that bad-but-readable data still indexes.
_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _next_month(year: int, month: int) -> datetime:
    if month == 12:
        return datetime(year + 1, 1, 1) if year < 9999 else OPEN_HIGH
    return datetime(year, month + 1, 1)


def _time_range(match: re.Match[str], day: datetime) -> tuple[datetime, datetime]:
    hour, minute, second, fraction = match.group(4, 5, 6, 7)
    if second is None:
        low = day.replace(hour=int(hour), minute=int(minute))
        step = timedelta(minutes=1)
    elif fraction is None:
        low = day.replace(hour=int(hour), minute=int(minute), second=int(second))
        step = timedelta(seconds=1)
    else:
        digits = fraction[:6]
        low = day.replace(
            hour=int(hour),
            minute=int(minute),
            second=int(second),
            microsecond=int(digits.ljust(6, "0")),
        )
        step = timedelta(microseconds=10 ** (6 - len(digits)))
    zone = match.group(8)
    offset = timedelta(0)
    if zone is not None and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        low = low - offset
        return low, low + step
    except OverflowError:  # within a day of year 1 or year 9999: clamp, keeping low < high
        if offset > timedelta(0):
            return OPEN_LOW, OPEN_LOW + step
        return OPEN_HIGH - step, OPEN_HIGH


@lru_cache(maxsize=16384)
def date_range(value: str) -> tuple[datetime, datetime] | None:
    """The ``[low, high)`` range, naive UTC, that a FHIR date/dateTime/instant string covers.

    A partial value covers its whole period (``2024`` → [2024-01-01, 2025-01-01)); a time with an
    offset is converted to UTC, a time without one is taken as UTC, and a date without a time is a
    UTC calendar period. The range always has ``low < high``. None if the text is not a date.
    """
    match = _DATE.fullmatch(value)
    if match is None:
        return None
    year_text, month_text, day_text, hour_text = match.group(1, 2, 3, 4)
    year = int(year_text)
    if year == 0:
        return None
    try:
        if month_text is None:
            low = datetime(year, 1, 1)
            return low, datetime(year + 1, 1, 1) if year < 9999 else OPEN_HIGH
        month = int(month_text)
        if day_text is None:
            return datetime(year, month, 1), _next_month(year, month)
        day = datetime(year, month, int(day_text))
        if hour_text is None:
            try:
                return day, day + timedelta(days=1)
            except OverflowError:
                return day, OPEN_HIGH
        return _time_range(match, day)
    except ValueError:  # month 13, 31 February, hour 25, …
        return None
