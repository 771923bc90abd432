"""The referral desk's queue: one SQL statement for a page's order and the total, one for its Tasks.

Incoming referrals awaiting an answer — Tasks owned by the organization, status requested or
received, tagged up or down — in ``queue_key`` order: priority (stat, asap, urgent, routine),
then contracted residents referred by their own family doctor (seed 004 附件4 (二)2: 优先就诊、
优先检查、优先住院), then the longest waiting (``authoredOn``). The organization's Tasks come
from the search module's ``owner`` criterion (the reference index) and the ``authored-on`` sort
key; status, direction, priority and priority group are read from each stored Task's own row.
The caller's access restriction is part of the same statement, once, and tests each Task's own
patient (``Task.for``). The earlier eight searches (one per priority group) took 4.9 s p95 at
10,000 open referrals (docs/benchmarks.md, issue #5; ADR 0013, ADR 0020).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, case, exists, func, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import UnaryExpression

from yilian.fhir import systems
from yilian.fhir.compartment import patients_of
from yilian.fhir.errors import invalid
from yilian.fhir.models import ResourceRow

# arch: store-access — the desk's queue orders Task keys over the index tables with the caller's
# access restriction (the store guard's own ``search_clause``) in the same statement, then reads
# the page's Tasks by key and records them with ``store.audit``: the audit choke point is kept.
from yilian.fhir.search.params import parse_search
from yilian.fhir.search.sql import match_query, order_by
from yilian.fhir.service import FhirService
from yilian.fhir.store import Access
from yilian.referral.resources import Json

# R4 request-priority codes, most pressing first (the queue's first key).
PRIORITY_RANK = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}
CONTRACTED = "contracted-family-doctor"  # priority group tag (seed 004 附件4 (二)2)
MAX_LIMIT = 1000
OPEN_STATUSES = ("requested", "received")  # awaiting the desk's answer
DIRECTIONS = ("up", "down")


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
        ("status", ",".join(OPEN_STATUSES)),
        ("_tag", ",".join(f"{direction}|{code}" for code in DIRECTIONS)),
        ("_sort", "authored-on"),
    ]


def _check_window(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"limit must be 1 to {MAX_LIMIT}", expression="limit", rule="queue-limit")
    if offset < 0:
        raise invalid("offset must be 0 or more", expression="offset", rule="queue-offset")


def _tagged(task: Any, system: str, code: str, dialect: str) -> ColumnElement[bool]:
    """Whether the stored Task carries this ``meta.tag``, read from the row already fetched
    (the same answer as its ``_tag`` index rows, written from this content)."""
    if dialect == "postgresql":
        tags = type_coerce(task.content, JSONB)["meta"]["tag"]
        contains: ColumnElement[bool] = tags.contains([{"system": system, "code": code}])
        return contains
    each = func.json_each(task.content, "$.meta.tag").table_valued("value")
    return (
        exists()
        .select_from(each)
        .where(
            func.json_extract(each.c.value, "$.system") == system,
            func.json_extract(each.c.value, "$.code") == code,
        )
    )


def queue_page(
    service: FhirService, organization: str, *, limit: int = 50, offset: int = 0
) -> QueuePage:
    """A page of the organization's queue, as the caller may see it, and the queue's length."""
    _check_window(limit, offset)
    service.store.flush()
    session = service.session
    dialect = session.get_bind().dialect.name
    criteria = _criteria(organization)
    # The owner criterion finds the organization's Tasks through the reference index; status,
    # direction and priority group are then read from each Task's own row, already fetched:
    # one index probe per candidate for each of them cost ~60 % of the statement at 10,000
    # referrals (docs/benchmarks.md, ADR 0020). The sort stays the search's ``authored-on``.
    parsed = parse_search("Task", criteria[:1] + criteria[3:], base_url=service.base_url)
    task = aliased(ResourceRow)
    direction = systems.REFERRAL_DIRECTION
    status = task.content["status"].as_string()
    matches = match_query(parsed.sql_types, parsed.filters, task, dialect=dialect).where(
        status.in_(sorted(OPEN_STATUSES)),
        or_(*(_tagged(task, direction, code, dialect) for code in DIRECTIONS)),
    )
    if service.guard is not None:
        # Only Tasks come back: the restriction tests each Task's own patient (``Task.for``).
        restriction = service.guard.search_clause(task, types=("Task",))
        if restriction is not None:
            matches = matches.where(restriction)
    # The priority straight from the stored Task (one value per row, no index probe).
    rank = case(PRIORITY_RANK, value=task.content["priority"].as_string(), else_=9)
    contracted = _tagged(task, systems.REFERRAL_PRIORITY_GROUP, CONTRACTED, dialect)
    group = case((contracted, 0), else_=1)
    (waited,) = order_by(parsed.options.sort, task)[:-1]  # authored-on ASC NULLS LAST
    while isinstance(waited, UnaryExpression):  # the value under the ordering modifiers
        waited = waited.element
    # The keys are computed in a sub-select (OFFSET 0 keeps PostgreSQL from folding it in), so
    # the window count and the sort carry four small columns per row, not the whole Task: with
    # the documents the count spilled to disk at 10,000 referrals.
    keys = (
        matches.add_columns(
            task.pk.label("pk"),
            rank.label("rank"),
            group.label("grp"),
            waited.label("waited"),
        )
        .offset(0)
        .subquery("queue_keys")
    )
    page = (
        select(keys.c.pk, func.count().over())
        .order_by(keys.c.rank, keys.c.grp, keys.c.waited.asc().nulls_last(), keys.c.pk)
        .limit(limit)
        .offset(offset)
    )
    rows = session.execute(page).all()
    if rows:
        total = rows[0][1]
        found = select(ResourceRow.pk, ResourceRow.content).where(
            ResourceRow.pk.in_([r[0] for r in rows])
        )
        content: dict[int, Json] = {pk: doc for pk, doc in session.execute(found).all()}
        tasks: list[Json] = [content[r[0]] for r in rows]
    else:
        total, tasks = session.execute(select(func.count()).select_from(keys)).scalar_one(), []
    query = f"Task?{urlencode(criteria)}&_count={limit}&_offset={offset}"
    patients = sorted({p for t in tasks for p in patients_of(t)})
    service.store.audit(
        Access("search", tuple(f"Task/{t['id']}" for t in tasks), tuple(patients), query=query)
    )
    return QueuePage(tasks, int(total), offset, limit)
