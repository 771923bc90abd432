"""Entry points of the search engine: run a search, or serve a later page of one.

A search that fits in one page costs one query (plus one per include direction); a longer one
adds the snapshot ``INSERT … SELECT`` and reads its first page from the snapshot, so every page —
the first included — comes from the same consistent list.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import func
from sqlalchemy.orm import Session, aliased

from yilian.fhir.errors import invalid
from yilian.fhir.models import ResourceRow
from yilian.fhir.search import paging
from yilian.fhir.search.bundle import searchset
from yilian.fhir.search.includes import Restriction, included
from yilian.fhir.search.paging import Found
from yilian.fhir.search.params import MAX_COUNT, ParsedSearch, Summary, Total, parse_search
from yilian.fhir.search.sql import match_query, order_by


def _search_url(base_url: str, resource_type: str | None, query: str) -> str:
    path = f"{base_url.rstrip('/')}/{resource_type}" if resource_type else base_url.rstrip("/")
    return f"{path}?{query}" if query else path


def _page_url(base_url: str, search_id: str, offset: int, count: int) -> str:
    query = urlencode({"_getpages": search_id, "_getpagesoffset": offset, "_count": count})
    return f"{base_url.rstrip('/')}?{query}"


def _page_links(
    base_url: str, search_id: str, offset: int, count: int, total: int
) -> list[tuple[str, str]]:
    """first / previous / next / last around ``offset`` (https://hl7.org/fhir/R4/http.html#paging)."""
    last = max(0, (total - 1) // count * count) if count else 0
    links = [("first", _page_url(base_url, search_id, 0, count))]
    if offset > 0:
        links.append(("previous", _page_url(base_url, search_id, max(0, offset - count), count)))
    if offset + count < total:
        links.append(("next", _page_url(base_url, search_id, offset + count, count)))
    links.append(("last", _page_url(base_url, search_id, last, count)))
    return links


def _render(
    session: Session,
    parsed: ParsedSearch,
    matches: list[Found],
    total: int,
    links: list[tuple[str, str]],
    base_url: str,
    restriction: Restriction | None = None,
) -> dict[str, Any]:
    options = parsed.options
    includes = included(session, matches, options.includes, restriction) if options.includes else []
    return searchset(
        base_url=base_url,
        matches=matches,
        includes=includes,
        total=None if options.total is Total.NONE else total,
        links=links,
        options=options,
    )


def search(
    session: Session,
    resource_type: str | None,
    params: list[tuple[str, str]],
    *,
    base_url: str,
    restriction: Restriction | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    """Run a search and return a FHIR searchset Bundle (dict). resource_type None = system-level
    search (with _type).

    ``restriction`` (yilian.auth) adds the access condition to the SQL itself, so totals and
    pages count only what the principal may see, and filters ``_include``/``_revinclude`` too;
    ``owner`` is remembered with a multi-page snapshot, which then serves only that owner.
    """
    parsed = parse_search(resource_type, params, base_url=base_url)
    options = parsed.options
    resource = aliased(ResourceRow)
    matches = match_query(
        parsed.sql_types, parsed.filters, resource, dialect=session.get_bind().dialect.name
    )
    clause = restriction(resource) if restriction is not None else None
    if clause is not None:
        matches = matches.where(clause)
    self_link = [("self", _search_url(base_url, resource_type, parsed.query))]
    if options.summary is Summary.COUNT or options.count == 0:
        total = session.execute(matches.add_columns(func.count())).scalar_one()
        return searchset(
            base_url=base_url,
            matches=[],
            includes=[],
            total=total,
            links=self_link,
            options=options,
        )
    ordering = order_by(options.sort, resource)
    columns = (resource.pk, resource.res_type, resource.res_id, resource.content)
    rows = session.execute(
        matches.add_columns(*columns).order_by(*ordering).limit(options.count + 1)
    ).all()
    if len(rows) <= options.count:
        found = [Found(*r) for r in rows]
        return _render(session, parsed, found, len(found), self_link, base_url, restriction)
    snapshot = paging.create_snapshot(
        session,
        matches,
        ordering,
        resource,
        resource_type=resource_type,
        query=parsed.query,
        owner=owner,
    )
    found = paging.page_rows(session, snapshot.search_id, 0, options.count)
    links = self_link + _page_links(base_url, snapshot.search_id, 0, options.count, snapshot.total)
    return _render(session, parsed, found, snapshot.total, links, base_url, restriction)


def get_page(
    session: Session,
    search_id: str,
    offset: int,
    count: int,
    *,
    base_url: str,
    owner: str | None = None,
    restriction: Restriction | None = None,
) -> dict[str, Any]:
    """A later page of a snapshot: ``_getpages={search_id}&_getpagesoffset={offset}&_count=…``.

    410 when the snapshot expired; the original query's ``_include``/``_summary``/``_elements``
    apply to every page.
    """
    if offset < 0:
        raise invalid(
            "_getpagesoffset must be 0 or more", expression="_getpagesoffset", rule="search-paging"
        )
    if count < 1:
        raise invalid(
            "_count must be 1 or more when paging", expression="_count", rule="search-paging"
        )
    count = min(count, MAX_COUNT)
    snapshot = paging.live_snapshot(session, search_id, owner=owner)
    parsed = parse_search(
        snapshot.resource_type,
        parse_qsl(snapshot.query, keep_blank_values=True),
        base_url=base_url,
    )
    found = paging.page_rows(session, search_id, offset, count)
    links = [("self", _page_url(base_url, search_id, offset, count))]
    links += _page_links(base_url, search_id, offset, count, snapshot.total)
    return _render(session, parsed, found, snapshot.total, links, base_url, restriction)
