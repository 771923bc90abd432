"""Snapshots of multi-page searches: written with one ``INSERT … SELECT``, read by position.

The ordered primary keys of every match are fixed when the search runs, so later pages are
slices of that list however the store changes meanwhile; each page shows the current version of
its resources and drops those deleted since (https://hl7.org/fhir/R4/http.html#paging).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from yilian.fhir.errors import gone
from yilian.fhir.models import ResourceRow
from yilian.fhir.search.models import SearchResultRow, SearchRow

SNAPSHOT_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class Found:
    """A resource a search returns (a match or an include)."""

    pk: int
    res_type: str
    res_id: str
    content: dict[str, Any]


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def create_snapshot(
    session: Session,
    matches: Select[Any],
    ordering: list[Any],
    resource: Any,
    *,
    resource_type: str | None,
    query: str,
    owner: str | None = None,
) -> SearchRow:
    """Persist the ordered matches (0-based positions) and return the snapshot with its total.

    One statement ranks and copies every match, so the list is one consistent read of the store.
    """
    now = utc_now()
    row = SearchRow(
        search_id=str(uuid.uuid4()),
        created=now,
        expires=now + SNAPSHOT_LIFETIME,
        resource_type=resource_type,
        query=query,
        total=0,
        owner=owner,
    )
    session.add(row)
    session.flush()
    ranked = matches.add_columns(
        literal(row.search_id, String),
        func.row_number().over(order_by=ordering) - 1,
        resource.pk,
    )
    # SQLAlchemy keeps an INSERT's rowcount only when asked (preserve_rowcount).
    result = session.execute(
        insert(SearchResultRow).from_select(["search_id", "position", "resource_pk"], ranked),
        execution_options={"preserve_rowcount": True},
    )
    row.total = int(result.rowcount)  # type: ignore[attr-defined]
    session.flush()
    return row


def live_snapshot(session: Session, search_id: str, *, owner: str | None = None) -> SearchRow:
    """The snapshot, or 410 Gone when it expired or never existed (cleanup forgets old ids).

    A snapshot made for one principal (``owner``) is unknown to every other: it holds the
    matches that principal may see.
    """
    row = session.get(SearchRow, search_id)
    if row is None or row.expires <= utc_now() or row.owner != owner:
        raise gone(
            f"search '{search_id}' has expired or is unknown: search results are kept for "
            f"{int(SNAPSHOT_LIFETIME.total_seconds() // 60)} minutes; run the search again"
        )
    return row


def page_rows(session: Session, search_id: str, offset: int, count: int) -> list[Found]:
    """Positions ``[offset, offset + count)`` of a snapshot, current versions, deleted dropped."""
    rows = session.execute(
        select(ResourceRow.pk, ResourceRow.res_type, ResourceRow.res_id, ResourceRow.content)
        .join(SearchResultRow, SearchResultRow.resource_pk == ResourceRow.pk)
        .where(
            SearchResultRow.search_id == search_id,
            SearchResultRow.position >= offset,
            SearchResultRow.position < offset + count,
            ResourceRow.deleted.is_(False),
        )
        .order_by(SearchResultRow.position)
    ).all()
    return [Found(*r) for r in rows]


def cleanup_expired(session: Session, *, now: datetime | None = None) -> int:
    """Delete expired snapshots and their rows; returns how many snapshots went."""
    moment = now or utc_now()
    expired = select(SearchRow.search_id).where(SearchRow.expires <= moment)
    session.execute(delete(SearchResultRow).where(SearchResultRow.search_id.in_(expired)))
    result = session.execute(delete(SearchRow).where(SearchRow.expires <= moment))
    return int(result.rowcount)  # type: ignore[attr-defined]
