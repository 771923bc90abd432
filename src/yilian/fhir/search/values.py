"""Typed search values and the parsers for one value of each parameter kind.

Rules follow the R4 search page, https://hl7.org/fhir/R4/search.html — section numbers cited beside
each parser. Parsers raise ``ValueError`` with a message; ``params`` turns it into an
OperationOutcome that names the parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from yilian.fhir.searchparams import normalise


class Prefix(StrEnum):
    """Comparison prefixes for ordered kinds (search.html#prefix)."""

    EQ = "eq"
    NE = "ne"
    GT = "gt"
    LT = "lt"
    GE = "ge"
    LE = "le"
    SA = "sa"
    EB = "eb"
    AP = "ap"


@dataclass(frozen=True)
class TokenValue:
    """``system|code``, ``|code`` (no system), ``code`` (any system) or ``system|`` (any code)."""

    system: str | None
    code: str | None
    no_system: bool = False


@dataclass(frozen=True)
class TextValue:
    """A normalised text for string search and token ``:text``."""

    text: str


@dataclass(frozen=True)
class DateValue:
    """A date search value: the prefix and the ``[low, high)`` range its precision implies."""

    prefix: Prefix
    low: datetime
    high: datetime


@dataclass(frozen=True)
class NumberValue:
    """A number with the ``[low, high)`` range its precision implies (search.html#number)."""

    prefix: Prefix
    value: Decimal
    low: Decimal
    high: Decimal


@dataclass(frozen=True)
class QuantityValue:
    """``[prefix]number|system|code``; ``number||unit`` matches the code or the unit."""

    number: NumberValue
    system: str | None
    code: str | None
    code_or_unit: bool = False


@dataclass(frozen=True)
class ReferenceValue:
    """A local reference (``id`` or ``Type/id``) or an absolute URL that is not ours."""

    target_type: str | None
    target_id: str | None
    url: str | None = None


@dataclass(frozen=True)
class UriValue:
    value: str


@dataclass(frozen=True)
class IdValue:
    """A logical id (``_id``)."""

    value: str


Value = (
    TokenValue
    | TextValue
    | DateValue
    | NumberValue
    | QuantityValue
    | ReferenceValue
    | UriValue
    | IdValue
)

# ------------------------------------------------------------------ escaping (search.html#escaping)


def split_escaped(text: str, separator: str) -> list[str]:
    """Split on ``separator`` unless it is escaped with a backslash; escapes are kept."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    """Remove the backslash before ``\\``, ``,``, ``|`` and ``$`` (search.html#escaping)."""
    return re.sub(r"\\([\\,|$])", r"\1", text)


# ------------------------------------------------------------------------------ prefixes


def split_prefix(text: str) -> tuple[Prefix, str]:
    """A leading two-letter prefix, or ``eq`` when there is none (search.html#prefix)."""
    head = text[:2]
    if len(text) > 2 and head in Prefix.__members__.values():
        return Prefix(head), text[2:]
    return Prefix.EQ, text


# ---------------------------------------------------------------------------------- dates


def date_range(text: str) -> tuple[datetime, datetime]:
    """The naive-UTC ``[low, high)`` range a date search value covers at its precision.

    ``2024`` covers the year, ``2024-05`` the month (search.html#date: "the precision of the value
    implies a range"); the index uses the same function, so both sides agree.
    """
    found = normalise.date_range(text)
    if found is None:
        raise ValueError(
            f"'{text}' is not a FHIR date: use YYYY, YYYY-MM, YYYY-MM-DD or "
            "YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]"
        )
    return found


def parse_date(text: str, *, now: datetime | None = None) -> DateValue:
    """``[prefix]date`` (search.html#date). ``ap`` widens the range by 10% of its distance to now,
    the spec's recommended tolerance, and by at least the value's own precision."""
    prefix, rest = split_prefix(text)
    low, high = date_range(rest)
    if prefix is Prefix.AP:
        current = now or datetime.now(UTC).replace(tzinfo=None)
        slack = max(abs(current - low) / 10, high - low)
        low = low - slack if low - normalise.OPEN_LOW > slack else normalise.OPEN_LOW
        high = high + slack if normalise.OPEN_HIGH - high > slack else normalise.OPEN_HIGH
    return DateValue(prefix, low, high)


# -------------------------------------------------------------------------------- numbers


def parse_number(text: str) -> NumberValue:
    """``[prefix]number``; ``eq`` covers ± half a unit of the last significant digit
    (search.html#number: "100" matches [99.5, 100.5))."""
    prefix, rest = split_prefix(text)
    try:
        value = Decimal(rest)
    except InvalidOperation as exc:
        raise ValueError(f"'{rest}' is not a number") from exc
    if not value.is_finite():
        raise ValueError(f"'{rest}' is not a finite number")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    return NumberValue(prefix, value, value - half, value + half)


def parse_quantity(text: str) -> QuantityValue:
    """``[prefix]number|system|code`` or ``number||unit`` (search.html#quantity)."""
    parts = [unescape(p) for p in split_escaped(text, "|")]
    if len(parts) not in (1, 3):
        raise ValueError(f"'{text}' is not a quantity: use [prefix]number[|system|code]")
    number = parse_number(parts[0])
    if len(parts) == 1:
        return QuantityValue(number, None, None)
    system, code = parts[1] or None, parts[2] or None
    if system is None:
        return QuantityValue(number, None, code, code_or_unit=code is not None)
    return QuantityValue(number, system, code)


# ------------------------------------------------------------------------ tokens and others


def parse_token(text: str) -> TokenValue:
    """``[system]|[code]`` or ``code`` (search.html#token)."""
    parts = split_escaped(text, "|")
    if len(parts) == 1:
        if not parts[0]:
            raise ValueError("a token needs a code, system|code, |code or system|")
        return TokenValue(None, unescape(parts[0]))
    if len(parts) > 2:
        raise ValueError(f"'{text}' has more than one unescaped '|': use system|code")
    system, code = unescape(parts[0]) or None, unescape(parts[1]) or None
    if system is None and code is None:
        raise ValueError("'|' alone is not a token: use system|code, |code or system|")
    return TokenValue(system, code, no_system=system is None)


_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]+")
_HISTORY = re.compile(r"/_history/[^/]+$")


def parse_reference(text: str, *, base_url: str, type_modifier: str | None) -> ReferenceValue:
    """``id``, ``Type/id``, our own absolute URL, or another server's URL (search.html#reference).

    A version suffix (``/_history/n``) is dropped: the store indexes references to the current
    resource.
    """
    value = _HISTORY.sub("", unescape(text))
    if not value:
        raise ValueError("a reference needs an id, Type/id or an absolute URL")
    local = base_url.rstrip("/") + "/"
    if value.startswith(local):
        value = value[len(local) :]
    elif "://" in value or value.startswith("urn:"):
        return ReferenceValue(None, None, url=value)
    pieces = value.split("/")
    if len(pieces) == 1:
        return ReferenceValue(type_modifier, pieces[0])
    if len(pieces) == 2 and _TYPE_NAME.fullmatch(pieces[0]):
        if type_modifier is not None and pieces[0] != type_modifier:
            raise ValueError(f"'{value}' is not a {type_modifier} reference (see the :Type)")
        return ReferenceValue(pieces[0], pieces[1])
    raise ValueError(f"'{value}' is not a reference: use id, Type/id or an absolute URL")
