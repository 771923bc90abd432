"""Turn parsed criteria into SQL over ``fhir_resource`` and the index tables.

The most selective criterion (``_driver``: a reference before a coded token before the rest)
becomes ``resource.pk IN (SELECT resource_pk FROM idx_* WHERE res_type = … AND param = … AND
<values OR-ed>)``, so the query starts from the composite lookup indexes (``(res_type, param,
code, system)`` …); every other criterion is a correlated ``EXISTS`` on the owner index
(``ix_idx_*_owner``) checked for each of those few owners. Written as ``IN`` lists, SQLite
materialises every criterion's list before intersecting them — all Observations with a common
code, every date in a range: seconds at 1M resources (docs/search.md, "Query plans").
Criteria are AND-ed (https://hl7.org/fhir/R4/search.html#combining). Deleted resources never
match: the store removes their index rows and every query also filters ``deleted``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    false,
    func,
    not_,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import UnaryExpression

from yilian.fhir.models import (
    INDEX_TABLES,
    DateIndex,
    NumberIndex,
    QuantityIndex,
    ReferenceIndex,
    ResourceRow,
    StringIndex,
    TokenIndex,
    UriIndex,
)
from yilian.fhir.search.params import Chain, Criterion, Filter, ReverseChain, SortKey
from yilian.fhir.search.values import (
    DateValue,
    IdValue,
    NumberValue,
    Prefix,
    QuantityValue,
    ReferenceValue,
    TextValue,
    TokenValue,
    UriValue,
    Value,
)

Resource = Any  # an aliased ResourceRow (SQLAlchemy's AliasedClass is untyped)


def _types_clause(column: Any, types: tuple[str, ...]) -> ColumnElement[bool]:
    """``types`` empty means every type (a system-level search without ``_type``)."""
    if not types:
        return true()
    clause: ColumnElement[bool] = column == types[0] if len(types) == 1 else column.in_(types)
    return clause


# ------------------------------------------------------------------------------ values


def _range_clause(
    prefix: Prefix, low: Any, high: Any, s_low: datetime, s_high: datetime
) -> ColumnElement[bool]:
    """Resource range ``[low, high)`` against search range ``[s_low, s_high)``.

    search.html#prefix: eq = the search range contains the resource range, ne = it does not;
    gt/lt = the resource range overlaps the range above ``s_high`` / below ``s_low``; ge/le = it
    overlaps the range from ``s_low`` up / up to ``s_high`` (so ``ge2024`` matches a stay that
    ends in 2024, as HAPI does; the spec's "or fully contains" clause is implied); sa = starts at
    or after ``s_high``; eb = ends at or before ``s_low``; ap = overlaps the widened range.
    """
    inside = and_(low >= s_low, high <= s_high)
    clauses: dict[Prefix, ColumnElement[bool]] = {
        Prefix.EQ: inside,
        Prefix.NE: not_(inside),
        Prefix.GT: high > s_high,
        Prefix.LT: low < s_low,
        Prefix.GE: high > s_low,
        Prefix.LE: low < s_high,
        Prefix.SA: low >= s_high,
        Prefix.EB: high <= s_low,
        Prefix.AP: and_(low < s_high, high > s_low),
    }
    return clauses[prefix]


def _instant_clause(column: Any, value: DateValue) -> ColumnElement[bool]:
    """``_lastUpdated``: the instant ``t`` is the range ``[t, t+1µs)``, so the rules of
    ``_range_clause`` reduce to comparisons of ``t`` alone."""
    low, high = value.low, value.high
    inside = and_(column >= low, column < high)
    clauses: dict[Prefix, ColumnElement[bool]] = {
        Prefix.EQ: inside,
        Prefix.NE: not_(inside),
        Prefix.GT: column >= high,
        Prefix.LT: column < low,
        Prefix.GE: column >= low,
        Prefix.LE: column < high,
        Prefix.SA: column >= high,
        Prefix.EB: column < low,
        Prefix.AP: inside,
    }
    return clauses[value.prefix]


def _number_clause(column: Any, value: NumberValue) -> ColumnElement[bool]:
    """A stored point against a search number (search.html#number): eq/ne use the
    precision-implied range, the order prefixes the exact value, ap ±10%."""
    exact = float(value.value)
    low, high = float(value.low), float(value.high)
    tolerance = float(abs(value.value) * Decimal("0.1"))
    clauses: dict[Prefix, ColumnElement[bool]] = {
        Prefix.EQ: and_(column >= low, column < high),
        Prefix.NE: or_(column < low, column >= high),
        Prefix.GT: column > exact,
        Prefix.LT: column < exact,
        Prefix.GE: column >= exact,
        Prefix.LE: column <= exact,
        Prefix.SA: column > exact,
        Prefix.EB: column < exact,
        Prefix.AP: and_(
            column >= min(low, exact - tolerance), column < max(high, exact + tolerance)
        ),
    }
    return clauses[value.prefix]


def _token_clause(system: Any, code: Any, value: TokenValue) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if value.code is not None:
        parts.append(code == value.code)
    if value.no_system:
        parts.append(system.is_(None))
    elif value.system is not None:
        parts.append(system == value.system)
    return and_(*parts)


def _uri_prefixes(value: str) -> list[str]:
    """The URI and each parent path of it, for ``:above`` (search.html#uri)."""
    found = [value]
    head = value.rstrip("/")
    while "/" in head and not head.endswith(":/"):
        head = head.rsplit("/", 1)[0]
        if head.endswith(":/") or head.endswith(":"):
            break
        found.append(head)
    return found


def _value_clause(criterion: Criterion, value: Value) -> ColumnElement[bool]:
    kind, modifier = criterion.kind, criterion.modifier
    if kind == "string" and isinstance(value, TextValue):
        if modifier == "exact":
            return StringIndex.value_exact == value.text
        if modifier == "contains":
            return StringIndex.value_norm.contains(value.text, autoescape=True)
        return StringIndex.value_norm.startswith(value.text, autoescape=True)
    if kind == "token" and isinstance(value, TextValue):
        return TokenIndex.text_norm.startswith(value.text, autoescape=True)
    if kind == "token" and isinstance(value, TokenValue):
        return _token_clause(TokenIndex.system, TokenIndex.code, value)
    if kind == "date" and isinstance(value, DateValue):
        return _range_clause(value.prefix, DateIndex.low, DateIndex.high, value.low, value.high)
    if kind == "number" and isinstance(value, NumberValue):
        return _number_clause(NumberIndex.value, value)
    if kind == "quantity" and isinstance(value, QuantityValue):
        return _quantity_clause(value)
    if kind == "reference" and isinstance(value, TokenValue):
        return _token_clause(
            ReferenceIndex.identifier_system, ReferenceIndex.identifier_value, value
        )
    if kind == "reference" and isinstance(value, ReferenceValue):
        return _reference_clause(value)
    if kind == "uri" and isinstance(value, UriValue):
        if modifier == "below":
            return UriIndex.value.startswith(value.value, autoescape=True)
        if modifier == "above":
            return UriIndex.value.in_(_uri_prefixes(value.value))
        return UriIndex.value == value.value
    raise AssertionError(f"{kind} criterion with a {type(value).__name__}")  # parser guarantees


def _quantity_clause(value: QuantityValue) -> ColumnElement[bool]:
    parts = [_number_clause(QuantityIndex.value, value.number)]
    if value.code_or_unit:
        parts.append(or_(QuantityIndex.code == value.code, QuantityIndex.unit == value.code))
    else:
        if value.system is not None:
            parts.append(QuantityIndex.system == value.system)
        if value.code is not None:
            parts.append(QuantityIndex.code == value.code)
    return and_(*parts)


def _reference_clause(value: ReferenceValue) -> ColumnElement[bool]:
    if value.url is not None:
        return ReferenceIndex.target_url == value.url
    if value.target_type is not None:
        return and_(
            ReferenceIndex.target_id == value.target_id,
            ReferenceIndex.target_type == value.target_type,
        )
    return ReferenceIndex.target_id == value.target_id


# ------------------------------------------------------------------------------ criteria


def _resource_column_clause(criterion: Criterion, resource: Resource) -> ColumnElement[bool]:
    """``_id`` and ``_lastUpdated`` are answered from ``fhir_resource`` itself."""
    if criterion.kind == "id":
        if criterion.missing is not None:  # every resource has an id
            return false() if criterion.missing else true()
        ids = [v.value for v in criterion.values if isinstance(v, IdValue)]
        matched: ColumnElement[bool] = resource.res_id.in_(ids)
        return not_(matched) if criterion.modifier == "not" else matched
    dates = [v for v in criterion.values if isinstance(v, DateValue)]
    return or_(*(_instant_clause(resource.last_updated, v) for v in dates))


def criterion_clause(
    criterion: Criterion, resource: Resource, types: tuple[str, ...], *, correlated: bool = False
) -> ColumnElement[bool]:
    """``resource`` matches ``criterion``: an IN over the owners of matching index rows, or with
    ``correlated`` an EXISTS over this resource's own index rows.

    The correlated form names no ``res_type`` (the outer query already fixes the type, and an
    owner's index rows carry its type), so only the owner index can serve it, whatever a
    planner's statistics say: the lookup index would read every row of the parameter.
    """
    if criterion.kind in ("id", "last_updated"):
        return _resource_column_clause(criterion, resource)
    table = INDEX_TABLES[criterion.kind]
    if correlated:
        return _correlated_clause(criterion, table, resource)
    owners = select(table.resource_pk).where(
        _types_clause(table.res_type, types), table.param == criterion.code
    )
    if criterion.missing is not None:
        has_value: ColumnElement[bool] = resource.pk.in_(owners)
        return not_(has_value) if criterion.missing else has_value
    values = or_(*(_value_clause(criterion, v) for v in criterion.values))
    if criterion.modifier == "not":  # search.html#token: also matches resources without a value
        excluded: ColumnElement[bool] = not_(resource.pk.in_(owners.where(values)))
        return excluded
    matched: ColumnElement[bool] = resource.pk.in_(owners.where(values))
    return matched


def _correlated_clause(criterion: Criterion, table: Any, resource: Resource) -> ColumnElement[bool]:
    """``criterion_clause`` as ``EXISTS`` over ``resource``'s own rows of ``table``."""
    own = select(table.resource_pk).where(
        table.resource_pk == resource.pk, table.param == criterion.code
    )
    if criterion.missing is not None:
        has_value = own.exists()
        return not_(has_value) if criterion.missing else has_value
    values = or_(*(_value_clause(criterion, v) for v in criterion.values))
    matched = own.where(values).exists()
    if criterion.modifier == "not":  # search.html#token: also matches resources without a value
        return not_(matched)
    return matched


def _chain_clause(chain: Chain, resource: Resource, types: tuple[str, ...]) -> ColumnElement[bool]:
    """``ref.param=v``: the reference points at a live target that matches ``param=v``."""
    target = aliased(ResourceRow)
    owners = (
        select(ReferenceIndex.resource_pk)
        .join(
            target,
            and_(
                target.res_type == ReferenceIndex.target_type,
                target.res_id == ReferenceIndex.target_id,
            ),
        )
        .where(
            _types_clause(ReferenceIndex.res_type, types),
            ReferenceIndex.param == chain.reference,
            _types_clause(ReferenceIndex.target_type, chain.target_types),
            target.deleted.is_(False),
            criterion_clause(chain.inner, target, chain.target_types),
        )
    )
    matched: ColumnElement[bool] = resource.pk.in_(owners)
    return matched


def _has_clause(has: ReverseChain, resource: Resource) -> ColumnElement[bool]:
    """``_has:Source:ref:param=v``: some live Source matching ``param=v`` refers to us."""
    source = aliased(ResourceRow)
    pointed = (
        select(ReferenceIndex.target_type, ReferenceIndex.target_id)
        .join(source, source.pk == ReferenceIndex.resource_pk)
        .where(
            ReferenceIndex.res_type == has.source_type,
            ReferenceIndex.param == has.reference,
            source.deleted.is_(False),
            criterion_clause(has.inner, source, (has.source_type,)),
        )
    )
    return tuple_(resource.res_type, resource.res_id).in_(pointed)


def filter_clause(
    item: Filter, resource: Resource, types: tuple[str, ...], *, correlated: bool = False
) -> ColumnElement[bool]:
    if isinstance(item, Chain):
        return _chain_clause(item, resource, types)
    if isinstance(item, ReverseChain):
        return _has_clause(item, resource)
    return criterion_clause(item, resource, types, correlated=correlated)


def _selectivity_rank(item: Filter) -> int | None:
    """How well ``item`` can drive the query as an ``IN`` list (lower is better), or None when it
    cannot: negations and ``:missing`` match most rows, and ``_id``/``_lastUpdated``, chains and
    ``_has`` are not index-row criteria. A reference names one target (a patient's few dozen
    rows); a token with a code names one concept (an identifier, or a common LOINC code); exact
    strings and URIs are usually near-unique; numbers, prefixes, date ranges and ``:text`` can
    match a large share of the type."""
    if not isinstance(item, Criterion) or item.kind in ("id", "last_updated"):
        return None
    if item.missing is not None or item.modifier == "not":
        return None
    if item.kind == "reference":
        return 0
    if item.kind == "token" and all(
        isinstance(v, TokenValue) and v.code is not None for v in item.values
    ):
        return 1
    if item.kind == "uri" or (item.kind == "string" and item.modifier == "exact"):
        return 2
    return 3


def _driver(filters: tuple[Filter, ...]) -> Filter | None:
    """The filter the query starts from; the other index criteria become correlated EXISTS.

    None when an ``_id`` equality is present (the resource's own unique index then drives) or
    when no filter can drive."""
    if any(
        isinstance(f, Criterion) and f.kind == "id" and f.modifier != "not" and f.missing is None
        for f in filters
    ):
        return None
    ranked = [
        (rank, i) for i, f in enumerate(filters) if (rank := _selectivity_rank(f)) is not None
    ]
    return filters[min(ranked)[1]] if ranked else None


# ------------------------------------------------------------------------------ queries

_SORT_COLUMNS = {
    "date": (DateIndex.low, DateIndex.high),
    "string": (StringIndex.value_norm, StringIndex.value_norm),
    "token": (TokenIndex.code, TokenIndex.code),
    "number": (NumberIndex.value, NumberIndex.value),
    "quantity": (QuantityIndex.value, QuantityIndex.value),
    "uri": (UriIndex.value, UriIndex.value),
}


def _sort_expression(key: SortKey, resource: Resource) -> UnaryExpression[Any]:
    """Ascending sorts on the smallest value (a date's low), descending on the largest (a date's
    high), as a resource with several values sorts by its extreme one; no value sorts last."""
    if key.kind == "id":
        column: Any = resource.res_id
    elif key.kind == "last_updated":
        column = resource.last_updated
    else:
        table = INDEX_TABLES[key.kind]
        low, high = _SORT_COLUMNS[key.kind]
        aggregate = func.max(high) if key.descending else func.min(low)
        column = (
            select(aggregate)
            .where(table.resource_pk == resource.pk, table.param == key.code)
            .scalar_subquery()
        )
    ordered = column.desc() if key.descending else column.asc()
    last: UnaryExpression[Any] = ordered.nulls_last()
    return last


def order_by(sort: tuple[SortKey, ...], resource: Resource) -> list[Any]:
    """The sort keys, then the primary key, so the order is total and pages are stable."""
    return [*(_sort_expression(k, resource) for k in sort), resource.pk.asc()]


def match_query(
    types: tuple[str, ...],
    filters: tuple[Filter, ...],
    resource: Resource,
    *,
    dialect: str = "postgresql",
) -> Select[Any]:
    """``SELECT … FROM fhir_resource WHERE <type> AND NOT deleted AND <every filter>`` (no
    columns yet: callers add them). The driver stays an ``IN`` list, the other index criteria
    are correlated; with no driver (only negations, say) every index criterion is correlated
    and the type's rows are scanned, which the ``IN`` lists did as well.

    On SQLite (``dialect``) with an index-row driver the type test is written ``res_type || ''``
    so no index serves it: without ANALYZE statistics (a store written through the API has none)
    SQLite otherwise walks ``ix_fhir_resource_type_updated`` — every resource of the type — and
    tests the driver's list per row instead of fetching the list's rows by primary key. The
    same device as SQLite's unary ``+`` (https://sqlite.org/optoverview.html, "Disqualifying
    WHERE Clause Terms Using Unary-+"); PostgreSQL plans from statistics and keeps the column.
    """
    driver = _driver(filters)
    type_column: Any = resource.res_type
    if dialect == "sqlite" and driver is not None:
        type_column = resource.res_type.concat("")
    return (
        select()
        .select_from(resource)
        .where(
            _types_clause(type_column, types),
            resource.deleted.is_(False),
            *(filter_clause(f, resource, types, correlated=f is not driver) for f in filters),
        )
    )
