"""``_include`` and ``_revinclude``: resources the matches point at, or that point at them.

One query per direction and round; ``:iterate`` runs one more round over what the first round
included (one level, https://hl7.org/fhir/R4/search.html#revinclude).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, true
from sqlalchemy.orm import Session, aliased

from yilian.fhir.models import ReferenceIndex, ResourceRow
from yilian.fhir.search.paging import Found
from yilian.fhir.search.params import Include

# The access condition on an aliased ResourceRow (None: none), as in yilian.fhir.search.service.
Restriction = Callable[[Any], ColumnElement[bool] | None]


def _spec_clause(spec: Include) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = [true()]
    if spec.source_type is not None:
        parts.append(ReferenceIndex.res_type == spec.source_type)
    if spec.reference is not None:
        parts.append(ReferenceIndex.param == spec.reference)
    if spec.target_type is not None:
        parts.append(ReferenceIndex.target_type == spec.target_type)
    return and_(*parts)


def _columns(resource: Any) -> tuple[Any, ...]:
    return (resource.pk, resource.res_type, resource.res_id, resource.content)


def _restricted(query: Select[Any], restriction: Restriction | None, row: Any) -> Select[Any]:
    """Only what the principal may see is ever included (``_include`` must not leak)."""
    clause = restriction(row) if restriction is not None else None
    return query if clause is None else query.where(clause)


def _forward(
    session: Session, pks: list[int], specs: list[Include], restriction: Restriction | None
) -> list[Found]:
    target = aliased(ResourceRow)
    query = (
        select(*_columns(target))
        .join(
            ReferenceIndex,
            and_(
                target.res_type == ReferenceIndex.target_type,
                target.res_id == ReferenceIndex.target_id,
            ),
        )
        .where(
            ReferenceIndex.resource_pk.in_(pks),
            target.deleted.is_(False),
            or_(*(_spec_clause(s) for s in specs)),
        )
        .order_by(target.pk)
    )
    query = _restricted(query, restriction, target)
    return [Found(*r) for r in session.execute(query).all()]


def _reverse(
    session: Session, pks: list[int], specs: list[Include], restriction: Restriction | None
) -> list[Found]:
    source = aliased(ResourceRow)
    pointed = aliased(ResourceRow)
    query = (
        select(*_columns(source))
        .join(ReferenceIndex, ReferenceIndex.resource_pk == source.pk)
        .join(
            pointed,
            and_(
                pointed.res_type == ReferenceIndex.target_type,
                pointed.res_id == ReferenceIndex.target_id,
            ),
        )
        .where(
            pointed.pk.in_(pks),
            source.deleted.is_(False),
            or_(*(_spec_clause(s) for s in specs)),
        )
        .order_by(source.pk)
    )
    query = _restricted(query, restriction, source)
    return [Found(*r) for r in session.execute(query).all()]


def _round(
    session: Session, found: list[Found], specs: list[Include], restriction: Restriction | None
) -> list[Found]:
    pks = [f.pk for f in found]
    if not pks or not specs:
        return []
    forward = [s for s in specs if not s.reverse]
    reverse = [s for s in specs if s.reverse]
    return (_forward(session, pks, forward, restriction) if forward else []) + (
        _reverse(session, pks, reverse, restriction) if reverse else []
    )


def included(
    session: Session,
    matches: list[Found],
    specs: tuple[Include, ...],
    restriction: Restriction | None = None,
) -> list[Found]:
    """Resources to add with ``search.mode = include``: distinct, never one of the matches."""
    seen = {f.pk for f in matches}
    result: list[Found] = []

    def keep(candidates: list[Found]) -> list[Found]:
        fresh: list[Found] = []
        for found in candidates:
            if found.pk not in seen:
                seen.add(found.pk)
                fresh.append(found)
        result.extend(fresh)
        return fresh

    first = keep(_round(session, matches, list(specs), restriction))
    keep(_round(session, first, [s for s in specs if s.iterate], restriction))
    return result
