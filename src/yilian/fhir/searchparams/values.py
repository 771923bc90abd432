"""FHIR values → index-row values, one function per search-parameter type.

Each function takes a value (the JSON node an expression yielded) with its FHIR type and returns
tuples in the column order of ``COLUMNS[kind]`` (the index table's value columns in
``yilian.fhir.models``). Types a parameter type cannot use yield nothing: the rules are in the
``extract`` module docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from yilian.fhir.searchparams.normalise import OPEN_HIGH, OPEN_LOW, date_range, normalise_string
from yilian.fhir.searchparams.paths import reference_type

Row = tuple[Any, ...]
Converter = Callable[[Any, str], list[Row]]

COLUMNS: dict[str, tuple[str, ...]] = {
    "string": ("value_norm", "value_exact"),
    "token": ("system", "code", "text_norm"),
    "date": ("low", "high"),
    "number": ("value",),
    "quantity": ("value", "system", "code", "unit"),
    "reference": (
        "target_type",
        "target_id",
        "target_url",
        "identifier_system",
        "identifier_value",
    ),
    "uri": ("value",),
}

CURRENCY_SYSTEM = (
    "urn:iso:std:iso:4217"  # Money.currency: https://hl7.org/fhir/R4/datatypes.html#Money
)
QUANTITY_TYPES = frozenset({"Quantity", "SimpleQuantity", "Age", "Duration", "Distance", "Count"})
_NAME_PARTS = ("given", "prefix", "suffix")
_ADDRESS_PARTS = ("city", "district", "state", "postalCode", "country", "text")


def _text(value: Any) -> str | None:
    return normalise_string(value) if type(value) is str and value else None


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) or isinstance(value, Decimal)


# ---------------------------------------------------------------- string


def _strings(node: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for key in keys:
        value = node.get(key)
        if type(value) is str:
            out.append(value)
        elif type(value) is list:
            out.extend(item for item in value if type(item) is str)
    return out


def string_rows(value: Any, fhir_type: str) -> list[Row]:
    if type(value) is str:
        exact = [value]
    elif type(value) is not dict:
        return []
    elif fhir_type == "HumanName":
        exact = _strings(value, ("family", *_NAME_PARTS, "text"))
    elif fhir_type == "Address":
        exact = _strings(value, ("line", *_ADDRESS_PARTS))
    else:
        return []
    return [(normalise_string(s), s) for s in exact if s]


# ---------------------------------------------------------------- token


def _coding(coding: Any) -> Row | None:
    if type(coding) is not dict:
        return None
    row = (coding.get("system"), coding.get("code"), _text(coding.get("display")))
    return row if row != (None, None, None) else None


def token_rows(value: Any, fhir_type: str) -> list[Row]:
    if type(value) is bool:
        return [(None, "true" if value else "false", None)]
    if type(value) is str:
        return [(None, value, None)]
    if type(value) is not dict:
        return []
    if fhir_type == "Coding":
        row = _coding(value)
        return [row] if row else []
    if fhir_type == "CodeableConcept":
        rows = [r for r in map(_coding, value.get("coding") or ()) if r]
        text = _text(value.get("text"))
        if text:
            rows.append((None, None, text))
        return rows
    if fhir_type == "Identifier":
        kind = value.get("type")
        text = _text(kind.get("text")) if type(kind) is dict else None
        row = (value.get("system"), value.get("value"), text)
        return [row] if row != (None, None, None) else []
    if fhir_type == "ContactPoint":
        if value.get("value") is None:
            return []
        return [(value.get("system"), value.get("value"), None)]
    return []


# ---------------------------------------------------------------- date


def _period(start: Any, end: Any) -> Row | None:
    first = date_range(start) if type(start) is str else None
    last = date_range(end) if type(end) is str else None
    if first is None and last is None:
        return None
    low: datetime = first[0] if first else OPEN_LOW
    high: datetime = last[1] if last else OPEN_HIGH
    if high <= low:  # end before start: keep the start, the only trustworthy half
        return first
    return (low, high)


def date_rows(value: Any, fhir_type: str) -> list[Row]:
    if type(value) is str:
        found = date_range(value)
        return [found] if found else []
    if type(value) is not dict:
        return []
    if fhir_type == "Period":
        row = _period(value.get("start"), value.get("end"))
        return [row] if row else []
    if fhir_type == "Timing":
        rows: list[Row] = [r for r in map(date_range, _strings(value, ("event",))) if r]
        repeat = value.get("repeat")
        bounds = repeat.get("boundsPeriod") if type(repeat) is dict else None
        if type(bounds) is dict:
            row = _period(bounds.get("start"), bounds.get("end"))
            if row:
                rows.append(row)
        return rows
    return []


# ---------------------------------------------------------------- number and quantity


def number_rows(value: Any, fhir_type: str) -> list[Row]:
    if _is_number(value):
        return [(float(value),)]
    if fhir_type == "Range" and type(value) is dict:
        return [
            (float(bound["value"]),)
            for bound in (value.get("low"), value.get("high"))
            if type(bound) is dict and _is_number(bound.get("value"))
        ]
    return []


def _quantity(value: Any) -> Row | None:
    if type(value) is not dict or not _is_number(value.get("value")):
        return None
    return (float(value["value"]), value.get("system"), value.get("code"), value.get("unit"))


def quantity_rows(value: Any, fhir_type: str) -> list[Row]:
    if type(value) is not dict:
        return []
    if fhir_type == "Money":
        if not _is_number(value.get("value")):
            return []
        return [(float(value["value"]), CURRENCY_SYSTEM, value.get("currency"), None)]
    if fhir_type == "Range":
        return [r for r in map(_quantity, (value.get("low"), value.get("high"))) if r]
    if fhir_type in QUANTITY_TYPES:
        row = _quantity(value)
        return [row] if row else []
    return []  # SampledData and anything else: no single value to compare


# ---------------------------------------------------------------- reference and uri


def reference_rows(value: Any, fhir_type: str) -> list[Row]:
    if type(value) is str:  # canonical / uri
        return [(None, None, value, None, None)]
    if fhir_type != "Reference" or type(value) is not dict:
        return []
    target_type = target_id = target_url = None
    reference = value.get("reference")
    if type(reference) is str and not reference.startswith("#"):
        target_type, target_id, target_url = _reference_target(reference)
    identifier = value.get("identifier")
    id_system = id_value = None
    if type(identifier) is dict:
        id_system, id_value = identifier.get("system"), identifier.get("value")
    row = (target_type, target_id, target_url, id_system, id_value)
    return [row] if row != (None, None, None, None, None) else []


@lru_cache(maxsize=1 << 16)
def _reference_target(reference: str) -> tuple[str | None, str | None, str | None]:
    """(target type, id, url) of a literal reference. Cached: the same patient, encounter,
    practitioner and organization references recur across a patient's resources (bulk loads)."""
    target_type = reference_type(reference)
    if target_type is None:
        return None, None, reference  # urn:uuid:…, or a URL that names no resource type
    parts = reference.split("/")
    id_at = len(parts) - 1 if "_history" not in parts else parts.index("_history") - 1
    return target_type, parts[id_at], reference if "://" in reference else None


def uri_rows(value: Any, fhir_type: str) -> list[Row]:
    return [(value,)] if type(value) is str else []


CONVERTERS: dict[str, Converter] = {
    "string": string_rows,
    "token": token_rows,
    "date": date_rows,
    "number": number_rows,
    "quantity": quantity_rows,
    "reference": reference_rows,
    "uri": uri_rows,
}


def infer_type(value: Any, param_type: str) -> str:
    """The FHIR type of a value whose static type is unknown (fhirpathpy fallback results)."""
    if type(value) is bool:
        return "boolean"
    if _is_number(value):
        return "decimal"
    if type(value) is str:
        return {"date": "dateTime", "reference": "canonical", "uri": "uri"}.get(
            param_type, "string"
        )
    if type(value) is not dict:
        return "Element"
    keys = value.keys()
    if "value" in keys and _is_number(value["value"]) and "currency" not in keys:
        return "Quantity"
    for fhir_type, markers in _SHAPES:
        if any(marker in keys for marker in markers):
            if fhir_type == "Identifier" and value.get("system") in _CONTACT_SYSTEMS:
                return "ContactPoint"
            return fhir_type
    return "Element"


_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
# First match wins: the keys only one of the candidate types has.
_SHAPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Reference", ("reference", "identifier")),
    ("HumanName", ("family", "given", "prefix", "suffix")),
    ("Address", ("line", "city", "district", "state", "postalCode", "country")),
    ("CodeableConcept", ("coding",)),
    ("Money", ("currency",)),
    ("Range", ("low", "high")),
    ("Period", ("start", "end")),
    ("Timing", ("event", "repeat")),
    ("Quantity", ("comparator", "unit")),
    ("Identifier", ("value",)),
    ("Coding", ("code", "display", "system")),
    ("CodeableConcept", ("text",)),
)
