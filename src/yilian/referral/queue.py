"""The referral desk's queue: one SQL statement for a page's order and the total, one for its Tasks.

Incoming referrals awaiting an answer — Tasks owned by the organization, status requested or
received, tagged up or down — in ``queue_key`` order: priority (stat, asap, urgent, routine),
then contracted residents referred by their own family doctor (seed 004 附件4 (二)2: 优先就诊、
优先检查、优先住院), then the longest waiting (``authoredOn``). The order is SQL over the Task's
search-index rows, built from the search module's own criteria (``priority=…``, ``_tag=…``,
``_sort=authored-on``; the priority from the stored Task), and the caller's access restriction
is part of the same statement —
once, where the earlier eight searches (one per priority group) evaluated it eight times: 4.9 s
p95 at 10,000 open referrals (docs/benchmarks.md, issue #5; ADR 0013).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import aliased

from yilian.fhir import systems
from yilian.fhir.compartment import patients_of
from yilian.fhir.errors import invalid
from yilian.fhir.models import ResourceRow

# arch: store-access — the desk's queue orders Task keys over the index tables with the caller's
# access restriction (the store guard's own ``search_clause``) in the same statement, then reads
# the page's Tasks by key and records them with ``store.audit``: the audit choke point is kept.
from yilian.fhir.search.params import parse_search
from yilian.fhir.search.sql import filter_clause, match_query, order_by
from yilian.fhir.service import FhirService
from yilian.fhir.store import Access
from yilian.referral.resources import Json

# R4 request-priority codes, most pressing first (the queue's first key).
PRIORITY_RANK = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}
CONTRACTED = "contracted-family-doctor"  # priority group tag (seed 004 附件4 (二)2)
MAX_LIMIT = 1000


@dataclass(frozen=True)
class QueuePage:
    tasks: list[Json]
    total: int  # every referral in the queue, not only this page
    offset: int
    limit: int


def _criteria(organization: str) -> list[tuple[str, str]]:
    direction = systems.REFERRAL_DIRECTION
    return [
        ("owner", f"Organization/{organization}"),
        ("status", "requested,received"),
        ("_tag", f"{direction}|up,{direction}|down"),
        ("_sort", "authored-on"),
    ]


def _check_window(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"limit must be 1 to {MAX_LIMIT}", expression="limit", rule="queue-limit")
    if offset < 0:
        raise invalid("offset must be 0 or more", expression="offset", rule="queue-offset")


def queue_page(
    service: FhirService, organization: str, *, limit: int = 50, offset: int = 0
) -> QueuePage:
    """A page of the organization's queue, as the caller may see it, and the queue's length."""
    _check_window(limit, offset)
    service.store.flush()
    session = service.session
    criteria = _criteria(organization)
    parsed = parse_search("Task", criteria, base_url=service.base_url)
    task = aliased(ResourceRow)
    matches = match_query(
        parsed.sql_types, parsed.filters, task, dialect=session.get_bind().dialect.name
    )
    if service.guard is not None:
        restriction = service.guard.search_clause(task)
        if restriction is not None:
            matches = matches.where(restriction)

    def has(name: str, value: str) -> ColumnElement[bool]:
        (criterion,) = parse_search("Task", [(name, value)], base_url=service.base_url).filters
        return filter_clause(criterion, task, parsed.sql_types, correlated=True)

    # The priority straight from the stored Task (one value per row, no index probe): four
    # EXISTS probes per candidate row cost ~half the query at 10,000 referrals.
    rank = case(PRIORITY_RANK, value=task.content["priority"].as_string(), else_=9)
    group = case((has("_tag", f"{systems.REFERRAL_PRIORITY_GROUP}|{CONTRACTED}"), 0), else_=1)
    ordering = [rank, group, *order_by(parsed.options.sort, task)]
    # The total rides on the page's rows (a window count over every match), so the restriction
    # is evaluated once; only a page past the end needs the count on its own. Keys first, the
    # documents of the page after: sorting 10,000 whole Tasks cost more than the query.
    page = matches.add_columns(task.pk, func.count().over()).order_by(*ordering)
    keys = session.execute(page.limit(limit).offset(offset)).all()
    if keys:
        total = keys[0][1]
        found = select(ResourceRow.pk, ResourceRow.content).where(
            ResourceRow.pk.in_([k[0] for k in keys])
        )
        content: dict[int, Json] = {pk: doc for pk, doc in session.execute(found).all()}
        tasks: list[Json] = [content[k[0]] for k in keys]
    else:
        total, tasks = session.execute(matches.add_columns(func.count())).scalar_one(), []
    query = f"Task?{urlencode(criteria)}&_count={limit}&_offset={offset}"
    patients = sorted({p for t in tasks for p in patients_of(t)})
    service.store.audit(
        Access("search", tuple(f"Task/{t['id']}" for t in tasks), tuple(patients), query=query)
    )
    return QueuePage(tasks, int(total), offset, limit)
