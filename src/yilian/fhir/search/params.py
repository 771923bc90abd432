"""Parse a FHIR search query into typed criteria and result options, strictly.

Every problem is a 400 OperationOutcome naming the parameter and the rule; lenient handling
(``Prefer: handling=lenient``) is not offered, so a typo never silently widens a search.
Rules: https://hl7.org/fhir/R4/search.html (section anchors cited beside each rule).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlencode

from yilian.fhir.errors import FhirError, invalid
from yilian.fhir.search.values import (
    IdValue,
    TextValue,
    UriValue,
    Value,
    parse_date,
    parse_number,
    parse_quantity,
    parse_reference,
    parse_token,
    split_escaped,
    unescape,
)
from yilian.fhir.searchparams import registry
from yilian.fhir.searchparams.normalise import normalise_string

DEFAULT_COUNT = 20
MAX_COUNT = 1000

# Kinds answered from index tables; "id" and "last_updated" come from fhir_resource itself.
INDEX_KINDS = frozenset({"string", "token", "date", "number", "quantity", "reference", "uri"})

# Modifiers each kind accepts (search.html#modifiers); :Type is checked separately.
MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"exact", "contains", "missing"}),
    "token": frozenset({"not", "text", "missing"}),
    "date": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "quantity": frozenset({"missing"}),
    "reference": frozenset({"identifier", "missing"}),
    "uri": frozenset({"below", "above", "missing"}),
    "id": frozenset({"not", "missing"}),
    "last_updated": frozenset(),
}

# Parameters that shape the response, not the match (search.html#return).
RESULT_PARAMETERS = frozenset(
    {"_count", "_sort", "_summary", "_elements", "_total", "_include", "_revinclude", "_type"}
)
# Formatting parameters the REST layer answers; they never change what matches.
IGNORED_PARAMETERS = frozenset({"_format", "_pretty"})
UNSUPPORTED_PARAMETERS = frozenset(
    {"_content", "_text", "_query", "_list", "_filter", "_contained", "_containedType"}
)
SORTABLE_KINDS = frozenset({"date", "string", "token", "number", "quantity", "uri"})

E = TypeVar("E", bound=StrEnum)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


class Summary(StrEnum):
    """``_summary`` values (search.html#summary)."""

    FALSE = "false"
    TRUE = "true"
    TEXT = "text"
    DATA = "data"
    COUNT = "count"


class Total(StrEnum):
    NONE = "none"
    ESTIMATE = "estimate"
    ACCURATE = "accurate"


@dataclass(frozen=True)
class Criterion:
    """One parameter occurrence; its values are OR-ed (search.html#combining).

    ``missing`` is set for ``:missing`` (True: the resource has no value for the parameter).
    """

    name: str
    code: str
    kind: str
    modifier: str | None
    values: tuple[Value, ...]
    missing: bool | None = None


@dataclass(frozen=True)
class Chain:
    """``ref[:Type].param=value`` — one level of chaining (search.html#chaining)."""

    name: str
    reference: str
    target_types: tuple[str, ...]
    inner: Criterion


@dataclass(frozen=True)
class ReverseChain:
    """``_has:Type:ref:param=value`` — one level of reverse chaining (search.html#has)."""

    name: str
    source_type: str
    reference: str
    inner: Criterion


Filter = Criterion | Chain | ReverseChain


@dataclass(frozen=True)
class SortKey:
    code: str
    kind: str  # "id" | "last_updated" | one of SORTABLE_KINDS
    descending: bool


@dataclass(frozen=True)
class Include:
    """``_include`` / ``_revinclude``: ``Source:param[:Target]``; ``param`` None means ``*``."""

    source_type: str | None
    reference: str | None
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass(frozen=True)
class ResultOptions:
    count: int = DEFAULT_COUNT
    sort: tuple[SortKey, ...] = ()
    summary: Summary = Summary.FALSE
    elements: tuple[str, ...] = ()
    total: Total = Total.ACCURATE
    includes: tuple[Include, ...] = ()


@dataclass(frozen=True)
class ParsedSearch:
    """A whole search: which types, which criteria (AND-ed), how to shape the result."""

    resource_types: tuple[str, ...]
    system_level: bool
    filters: tuple[Filter, ...]
    options: ResultOptions
    query: str = field(default="")  # the normalised query, for self links and paging
    all_types: bool = False  # system-level without _type: no type restriction in SQL

    @property
    def sql_types(self) -> tuple[str, ...]:
        """The types to restrict SQL to; empty for every type."""
        return () if self.all_types else self.resource_types


def _bad(name: str, message: str, rule: str) -> FhirError:
    return invalid(f"search parameter '{name}': {message}", expression=name, rule=rule)


# ------------------------------------------------------------------------------ definitions


def _kind_of(types: tuple[str, ...], code: str, name: str) -> tuple[str, tuple[str, ...]]:
    """The kind and reference targets of ``code``, which every searched type must define."""
    if code == "_id":
        return "id", ()
    if code == "_lastUpdated":
        return "last_updated", ()
    kinds: set[str] = set()
    targets: list[str] = []
    for res_type in types:
        definition = registry.get(res_type, code)
        if definition is None:
            raise _bad(name, f"{res_type} has no search parameter '{code}'", "search-param-known")
        kinds.add(definition.type)
        targets.extend(t for t in definition.targets if t not in targets)
    if len(kinds) != 1:
        raise _bad(name, f"'{code}' has different types across {types}", "search-param-known")
    kind = kinds.pop()
    if kind not in INDEX_KINDS:
        raise _bad(name, f"{kind} parameters are not supported", "search-param-kind-supported")
    return kind, tuple(targets)


# ------------------------------------------------------------------------------ criteria


def _parse_value(kind: str, modifier: str | None, text: str, name: str, base_url: str) -> Value:
    try:
        if kind == "id":
            return IdValue(unescape(text))
        if kind in ("date", "last_updated"):
            return parse_date(text)
        if kind == "number":
            return parse_number(text)
        if kind == "quantity":
            return parse_quantity(text)
        if kind == "string" or (kind == "token" and modifier == "text"):
            return TextValue(unescape(text))
        if kind == "token" or (kind == "reference" and modifier == "identifier"):
            return parse_token(text)
        if kind == "reference":
            type_modifier = modifier if modifier and modifier[0].isupper() else None
            return parse_reference(text, base_url=base_url, type_modifier=type_modifier)
        return UriValue(unescape(text))
    except ValueError as exc:
        raise _bad(name, str(exc), f"search-value-{kind.replace('_', '-')}") from exc


def _check_modifier(kind: str, modifier: str | None, targets: tuple[str, ...], name: str) -> None:
    if modifier is None:
        return
    if kind == "reference" and modifier[0].isupper():
        if modifier not in registry.resource_types():
            raise _bad(name, f"':{modifier}' is not a resource type", "search-modifier-type")
        if targets and modifier not in targets:
            raise _bad(
                name,
                f"':{modifier}' is not a target ({', '.join(targets)})",
                "search-modifier-type",
            )
        return
    if modifier not in MODIFIERS[kind]:
        allowed = ", ".join(sorted(":" + m for m in MODIFIERS[kind])) or "none"
        raise _bad(
            name,
            f"modifier ':{modifier}' is not supported on {kind.replace('_', ' ')} parameters "
            f"(supported: {allowed})",
            "search-modifier-supported",
        )


def parse_criterion(
    types: tuple[str, ...], name: str, raw: str, *, base_url: str, label: str | None = None
) -> Criterion:
    """One ``code[:modifier]=v1,v2`` against the given resource types."""
    label = label or name
    code, _, modifier_text = name.partition(":")
    modifier = modifier_text or None
    if not _NAME.fullmatch(code) or (modifier is not None and ":" in modifier):
        raise _bad(label, "is not a parameter name of the form code[:modifier]", "search-syntax")
    kind, targets = _kind_of(types, code, label)
    _check_modifier(kind, modifier, targets, label)
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise _bad(label, ":missing takes true or false", "search-value-missing")
        return Criterion(label, code, kind, modifier, (), missing=raw == "true")
    pieces = split_escaped(raw, ",")
    if any(not p for p in pieces):
        raise _bad(label, "has an empty value", "search-value-empty")
    values = tuple(_parse_value(kind, modifier, p, label, base_url) for p in pieces)
    if modifier in ("text", "contains") or (kind == "string" and modifier is None):
        values = tuple(
            TextValue(normalise_string(v.text)) if isinstance(v, TextValue) else v for v in values
        )
    return Criterion(label, code, kind, modifier, values)


def _parse_chain(types: tuple[str, ...], name: str, raw: str, base_url: str) -> Chain:
    head, _, tail = name.partition(".")
    if "." in tail:
        raise _bad(name, "chains of more than one level are not supported", "search-chain-depth")
    code, _, type_modifier = head.partition(":")
    kind, targets = _kind_of(types, code, name)
    if kind != "reference":
        raise _bad(name, f"'{code}' is a {kind} parameter, so it cannot be chained", "search-chain")
    candidates = (type_modifier,) if type_modifier else targets
    if type_modifier:
        _check_modifier(kind, type_modifier, targets, name)
    inner_code = tail.partition(":")[0]
    usable = tuple(
        t
        for t in candidates
        if registry.get(t, inner_code) is not None or inner_code in ("_id", "_lastUpdated")
    )
    if not usable:
        raise _bad(
            name,
            f"no target of '{code}' ({', '.join(candidates)}) has a parameter '{inner_code}'",
            "search-chain",
        )
    inner = parse_criterion(usable, tail, raw, base_url=base_url, label=name)
    return Chain(name, code, usable, inner)


def _parse_has(types: tuple[str, ...], name: str, raw: str, base_url: str) -> ReverseChain:
    parts = name.split(":", 3)
    if len(parts) < 4 or not all(parts[1:]):
        raise _bad(name, "use _has:Type:reference:parameter=value", "search-has-syntax")
    _, source_type, reference, inner_name = parts
    if inner_name.startswith("_has"):
        raise _bad(name, "nested _has is not supported (one level only)", "search-has-depth")
    if source_type not in registry.resource_types():
        raise _bad(name, f"'{source_type}' is not a resource type", "search-has-syntax")
    kind, targets = _kind_of((source_type,), reference, name)
    if kind != "reference":
        raise _bad(name, f"'{reference}' of {source_type} is not a reference", "search-has-syntax")
    if targets and not any(t in targets for t in types):
        raise _bad(
            name,
            f"{source_type}.{reference} cannot point at {', '.join(types)}",
            "search-has-syntax",
        )
    inner = parse_criterion((source_type,), inner_name, raw, base_url=base_url, label=name)
    return ReverseChain(name, source_type, reference, inner)


# --------------------------------------------------------------------------- result options


def _parse_count(raw: str) -> int:
    if not raw.isdigit():
        raise _bad("_count", f"'{raw}' is not a non-negative integer", "search-count")
    return min(int(raw), MAX_COUNT)


def _parse_sort(types: tuple[str, ...], raw: str) -> tuple[SortKey, ...]:
    keys: list[SortKey] = []
    for item in raw.split(","):
        descending = item.startswith("-")
        code = item[1:] if descending else item
        if not code:
            raise _bad("_sort", "has an empty key", "search-sort")
        kind, _ = _kind_of(types, code, "_sort")
        if kind not in SORTABLE_KINDS and kind not in ("id", "last_updated"):
            raise _bad("_sort", f"cannot sort on {kind} parameter '{code}'", "search-sort")
        keys.append(SortKey(code, kind, descending))
    return tuple(keys)


def _parse_enum(enum: type[E], name: str, raw: str) -> E:
    try:
        return enum(raw)
    except ValueError as exc:
        allowed = ", ".join(e.value for e in enum)
        raise _bad(name, f"'{raw}' is not one of {allowed}", f"search-{name.lstrip('_')}") from exc


def _parse_include(types: tuple[str, ...], name: str, raw: str, *, reverse: bool) -> Include:
    modifier = name.partition(":")[2]
    if modifier not in ("", "iterate", "recurse"):
        raise _bad(name, f"':{modifier}' is not :iterate", "search-include")
    iterate = modifier in ("iterate", "recurse")
    if raw == "*":
        return Include(None, None, None, iterate, reverse)
    parts = raw.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise _bad(name, f"'{raw}' is not Type:parameter[:TargetType] or *", "search-include")
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if source not in registry.resource_types():
        raise _bad(name, f"'{source}' is not a resource type", "search-include")
    if not reverse and not iterate and source not in types:
        raise _bad(
            name, f"'{source}' is not a searched type ({', '.join(types)})", "search-include"
        )
    if code == "*":
        return Include(source, None, target, iterate, reverse)
    kind, targets = _kind_of((source,), code, name)
    if kind != "reference":
        raise _bad(name, f"'{source}:{code}' is not a reference parameter", "search-include")
    if target is not None and targets and target not in targets:
        raise _bad(name, f"'{target}' is not a target of {source}:{code}", "search-include")
    return Include(source, code, target, iterate, reverse)


def _parse_types(raw: str) -> tuple[str, ...]:
    types = tuple(t for t in raw.split(",") if t)
    unknown = [t for t in types if t not in registry.resource_types()]
    if not types or unknown:
        raise _bad(
            "_type", f"unknown resource type(s): {', '.join(unknown) or '(none)'}", "search-type"
        )
    return types


def _parse_elements(raw: str) -> tuple[str, ...]:
    elements = tuple(e.strip() for e in raw.split(",") if e.strip())
    for element in elements:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", element):
            raise _bad(
                "_elements", f"'{element}' is not a top-level element name", "search-elements"
            )
    return elements


# ------------------------------------------------------------------------------------ entry


def _resolve_types(resource_type: str | None, params: list[tuple[str, str]]) -> tuple[str, ...]:
    given = [v for k, v in params if k == "_type"]
    if resource_type is not None:
        if given:
            raise _bad("_type", "only allowed in a system-level search", "search-type")
        return (resource_type,)
    if len(given) > 1:
        raise _bad("_type", "give _type once, with comma-separated types", "search-type")
    return _parse_types(given[0]) if given else tuple(sorted(registry.resource_types()))


def parse_search(
    resource_type: str | None, params: list[tuple[str, str]], *, base_url: str
) -> ParsedSearch:
    """Parse the query of a type-level (``resource_type``) or system-level (None) search."""
    types = _resolve_types(resource_type, params)
    filters: list[Filter] = []
    includes: list[Include] = []
    options: dict[str, object] = {}
    setters: dict[str, Callable[[str, str], None]] = {
        "_count": lambda n, v: options.__setitem__("count", _parse_count(v)),
        "_sort": lambda n, v: options.__setitem__("sort", _parse_sort(types, v)),
        "_summary": lambda n, v: options.__setitem__("summary", _parse_enum(Summary, n, v)),
        "_total": lambda n, v: options.__setitem__("total", _parse_enum(Total, n, v)),
        "_elements": lambda n, v: options.__setitem__("elements", _parse_elements(v)),
    }
    kept: list[tuple[str, str]] = []
    for name, raw in params:
        code = name.partition(":")[0].partition(".")[0]
        if code in IGNORED_PARAMETERS or code == "_type":
            continue
        kept.append((name, raw))
        if code in UNSUPPORTED_PARAMETERS:
            raise _bad(name, "is not supported by this server", "search-param-supported")
        if code in setters:
            if code[1:] in options:
                raise _bad(name, "may be given only once", "search-result-once")
            setters[code](name, raw)
        elif code in ("_include", "_revinclude"):
            includes.extend(
                _parse_include(types, name, item, reverse=code == "_revinclude")
                for item in raw.split(",")
            )
        elif code == "_has":
            filters.append(_parse_has(types, name, raw, base_url))
        elif "." in name:
            filters.append(_parse_chain(types, name, raw, base_url))
        else:
            filters.append(parse_criterion(types, name, raw, base_url=base_url))
    if resource_type is None and "_type" in dict(params):
        kept.insert(0, ("_type", ",".join(types)))
    result = ResultOptions(includes=tuple(includes), **options)  # type: ignore[arg-type]
    if result.summary is not Summary.FALSE and result.elements:
        raise _bad("_elements", "cannot be combined with _summary", "search-summary-elements")
    all_types = resource_type is None and "_type" not in dict(params)
    return ParsedSearch(
        types, resource_type is None, tuple(filters), result, urlencode(kept), all_types
    )
