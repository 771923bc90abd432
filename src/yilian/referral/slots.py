"""Schedules and slots of a hospital department, the reserved community-referral channel, release.

A department's outpatient sessions become one Schedule (actor: the hospital's Location; the
hospital Organization in an extension, since R4 Schedule.actor cannot be an Organization) and one
Slot per appointment interval. Each day, ``reserved_share`` of the slots (from the reservation
policy, never from code) is reserved for community referrals: such a Slot carries the channel and
release-time extensions and a ``_tag`` so it can be found. ``release_reserved_slots`` returns
unused reserved slots to the public pool once their release time has passed; it only ever touches
slots still tagged reserved, so running it twice changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.orm import aliased

from yilian.fhir import systems
from yilian.fhir.errors import invalid

# arch: store-access — a losing booking's free alternatives: the search module's own criteria and
# sort, cut at five in SQL (no paging snapshot); Slots carry no personal data (not audited).
from yilian.fhir.models import ResourceRow
from yilian.fhir.search.params import parse_search
from yilian.fhir.search.sql import match_query, order_by
from yilian.fhir.service import FhirService
from yilian.fhir.store import ResourceStore
from yilian.referral import resources as rs
from yilian.referral.policy import CLINIC_LEVELS, Reservation, reservation_policy
from yilian.referral.resources import CHINA_TIME, COMMUNITY_REFERRAL, RELEASED, Json

if TYPE_CHECKING:
    from yilian.fhir.runtime import RequestContext

DEPARTMENT_SESSIONS = ((dt.time(8, 0), dt.time(11, 30)), (dt.time(13, 30), dt.time(16, 30)))
WEEKDAYS = frozenset(range(5))  # Monday..Friday (assumption R7: outpatient days)
MAX_DAYS = 120  # one generator call covers at most this many days (bounded work per request)


@dataclass(frozen=True)
class SlotPlan:
    """What to generate: one hospital department (optionally one expert) over a date range."""

    organization: str
    department: str
    location: str
    first: dt.date
    last: dt.date
    clinic_level: str = "general"
    practitioner: str | None = None
    minutes: int = 15
    sessions: tuple[tuple[dt.time, dt.time], ...] = DEPARTMENT_SESSIONS
    weekdays: frozenset[int] = WEEKDAYS

    def check(self) -> None:
        if self.clinic_level not in CLINIC_LEVELS:
            raise invalid(
                f"clinic_level must be one of {CLINIC_LEVELS}, not {self.clinic_level!r}",
                expression="clinic_level",
                rule="clinic-level",
            )
        if self.last < self.first or (self.last - self.first).days >= MAX_DAYS:
            raise invalid(
                f"the date range {self.first}..{self.last} must be ordered and at most "
                f"{MAX_DAYS} days",
                expression="last",
                rule="slot-date-range",
            )
        if not 5 <= self.minutes <= 240:
            raise invalid(
                "minutes must be between 5 and 240",
                expression="minutes",
                rule="slot-length",
            )

    @property
    def schedule_id(self) -> str:
        parts = [self.organization, self.department, self.clinic_level, self.practitioner or ""]
        return "-".join(p for p in parts if p)[:48]


@dataclass
class Generated:
    schedule_id: str
    created: list[str] = field(default_factory=list)
    reserved: list[str] = field(default_factory=list)
    existing: int = 0


def reserved_positions(count: int, share: float) -> set[int]:
    """Which of a day's ``count`` slots to reserve: ``round(share × count)`` spread evenly."""
    wanted = int(share * count + 0.5)
    return {i for i in range(count) if (i + 1) * wanted // count > i * wanted // count}


def day_starts(plan: SlotPlan, day: dt.date) -> list[dt.datetime]:
    step = dt.timedelta(minutes=plan.minutes)
    starts = []
    for begin, end in plan.sessions:
        moment = dt.datetime.combine(day, begin, CHINA_TIME)
        stop = dt.datetime.combine(day, end, CHINA_TIME)
        while moment + step <= stop:
            starts.append(moment)
            moment += step
    return starts


def schedule_resource(plan: SlotPlan, first: dt.date, last: dt.date) -> Json:
    actors = [rs.ref("Location", plan.location)]
    if plan.practitioner:
        actors.append(rs.ref("Practitioner", plan.practitioner))
    department = rs.coding(systems.DEPARTMENT, plan.department)
    return {
        "resourceType": "Schedule",
        "id": plan.schedule_id,
        "active": True,
        "extension": [
            {
                "url": systems.EXT_SCHEDULE_ORGANIZATION,
                "valueReference": rs.ref("Organization", plan.organization),
            }
        ],
        "serviceCategory": [{"coding": [rs.coding(systems.CLINIC_LEVEL, plan.clinic_level)]}],
        "specialty": [{"coding": [department]}],
        "actor": actors,
        "planningHorizon": {
            "start": dt.datetime.combine(first, dt.time(0), CHINA_TIME).isoformat(),
            "end": dt.datetime.combine(last, dt.time(23, 59), CHINA_TIME).isoformat(),
        },
    }


def slot_resource(
    plan: SlotPlan, start: dt.datetime, rules: Reservation, *, reserved: bool
) -> Json:
    end = start + dt.timedelta(minutes=plan.minutes)
    opens = start - dt.timedelta(days=rules.public_window_days)
    slot: Json = {
        "resourceType": "Slot",
        "id": f"{plan.schedule_id}-{start:%Y%m%d%H%M}",
        "schedule": rs.ref("Schedule", plan.schedule_id),
        "status": "free",
        "specialty": [{"coding": [rs.coding(systems.DEPARTMENT, plan.department)]}],
        "start": rs.instant(start),
        "end": rs.instant(end),
    }
    if reserved:
        opens -= dt.timedelta(days=rules.chc_advance_days)
        release = start - dt.timedelta(hours=rules.release_hours_before_start)
        rs.set_extension(slot, systems.EXT_SLOT_CHANNEL, "valueCode", COMMUNITY_REFERRAL)
        rs.set_extension(slot, systems.EXT_SLOT_RELEASE_TIME, "valueDateTime", rs.instant(release))
        rs.set_tag(slot, systems.SLOT_CHANNEL, COMMUNITY_REFERRAL)
    rs.set_extension(slot, systems.EXT_SLOT_BOOKING_OPENS, "valueDateTime", rs.instant(opens))
    return slot


def _checked_rules(store: ResourceStore, plan: SlotPlan) -> Reservation:
    """The reservation rules of the plan's department, the plan checked and its hospital and
    location known (a 404 names an unknown one)."""
    plan.check()
    rules = reservation_policy().for_department(
        plan.organization, plan.department, plan.clinic_level
    )
    store.read("Organization", plan.organization, audit=False)
    store.read("Location", plan.location, audit=False)
    return rules


def generate_slots(service: FhirService, plan: SlotPlan) -> Generated:
    """Create the Schedule (once) and every missing Slot of the plan; existing ones are kept."""
    store = service.store
    rules = _checked_rules(store, plan)
    result = Generated(plan.schedule_id)
    existing_schedule = store.current_row("Schedule", plan.schedule_id)
    if existing_schedule is None or existing_schedule.deleted:
        store.update("Schedule", plan.schedule_id, schedule_resource(plan, plan.first, plan.last))
    for slot, reserved in planned_slots(plan, rules):
        if store.current_row("Slot", slot["id"]) is not None:
            result.existing += 1
            continue
        store.create(slot, res_id=slot["id"])
        result.created.append(slot["id"])
        if reserved:
            result.reserved.append(slot["id"])
    return result


def planned_slots(plan: SlotPlan, rules: Reservation) -> Iterator[tuple[Json, bool]]:
    """Every Slot of the plan, in time order, with whether it is reserved for referrals."""
    day = plan.first
    while day <= plan.last:
        if day.weekday() in plan.weekdays:
            starts = day_starts(plan, day)
            keep = reserved_positions(len(starts), rules.reserved_share)
            for index, start in enumerate(starts):
                yield slot_resource(plan, start, rules, reserved=index in keep), index in keep
        day += dt.timedelta(days=1)


def missing_slots(service: FhirService, plan: SlotPlan) -> tuple[list[Json], Generated]:
    """What ``generate_slots`` would create — the Schedule if missing and every Slot not yet
    there — without writing it, for a job that writes many plans at once (``bulk_generate``).

    The existing Slots are found by one search of the Schedule's slots, not one look-up per Slot;
    a Schedule that was never written has none.
    """
    store = service.store
    rules = _checked_rules(store, plan)
    result = Generated(plan.schedule_id)
    schedule = store.current_row("Schedule", plan.schedule_id)
    known: set[str] = set()
    if schedule is not None:
        known = {
            s["id"]
            for s in search_all(service, "Slot", [("schedule", f"Schedule/{plan.schedule_id}")])
        }
    resources: list[Json] = []
    if schedule is None or schedule.deleted:
        resources.append(schedule_resource(plan, plan.first, plan.last))
    for slot, reserved in planned_slots(plan, rules):
        if slot["id"] in known:
            result.existing += 1
            continue
        resources.append(slot)
        result.created.append(slot["id"])
        if reserved:
            result.reserved.append(slot["id"])
    return resources, result


def bulk_generate(
    service: FhirService, ctx: RequestContext, plans: list[SlotPlan], *, source: str
) -> list[Generated]:
    """``generate_slots`` for many plans through the bulk writer (``write_resources``): the
    same Schedules and Slots, validated, with one audit entry per 1,000 resources instead of one
    per Slot. At demo scale (18 departments, 14 days, 4,680 Slots) the store path, one create
    with its existence check, savepoint and audit entry per Slot, cost ~12 CPU-seconds.

    No write hook runs, so this is for generation jobs only: a new Slot is free and the booking
    hook's only rule for a Slot write, the channel tag, is already in step (``slot_resource``
    sets tag and extension together).
    """
    from yilian.fhir.bulk.loader import write_resources

    resources: list[Json] = []
    results: list[Generated] = []
    for plan in plans:
        planned, result = missing_slots(service, plan)
        resources.extend(planned)
        results.append(result)
    service.store.flush()
    write_resources(service.store.session, ctx, resources, source=source)
    return results


def search_all(
    service: FhirService, res_type: str, params: list[tuple[str, str]]
) -> Iterator[Json]:
    """Every match of a search, following the store's paging links."""
    bundle = service.search(res_type, [*params, ("_count", "500")])
    while True:
        for entry in bundle.get("entry", []):
            if entry.get("search", {}).get("mode", "match") == "match":
                yield entry["resource"]
        following = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        if not following:
            return
        query = parse_qs(urlsplit(following[0]).query)
        bundle = service.page(
            query["_getpages"][0],
            int(query.get("_getpagesoffset", ["0"])[0]),
            int(query.get("_count", ["500"])[0]),
        )


def release_reserved_slots(service: FhirService, now: dt.datetime) -> list[str]:
    """Return every free reserved slot whose release time has passed to the public pool.

    Idempotent: a released slot loses its channel and its reserved tag (it is tagged
    ``released-to-public`` instead, for the managers' counts), so a second run finds nothing.
    Busy reserved slots stay as they are: they were used by the channel.
    """
    due = []
    params = [("_tag", f"{systems.SLOT_CHANNEL}|{COMMUNITY_REFERRAL}"), ("status", "free")]
    for slot in list(search_all(service, "Slot", params)):
        release = rs.parse_instant(rs.extension(slot, systems.EXT_SLOT_RELEASE_TIME))
        if release is None or release <= now:
            due.append(slot["id"])
    released = []
    for slot_id in due:
        row = service.store.current_row("Slot", slot_id, for_update=True)
        if row is None or row.deleted:
            continue
        slot = dict(row.content)
        if slot.get("status") != "free" or rs.slot_channel(slot) != COMMUNITY_REFERRAL:
            continue  # booked or released meanwhile
        released.append(slot_id)
        rs.drop_extension(slot, systems.EXT_SLOT_CHANNEL)
        rs.set_extension(slot, systems.EXT_SLOT_RELEASED, "valueDateTime", rs.instant(now))
        rs.set_tag(slot, systems.SLOT_CHANNEL, RELEASED)
        service.store.update("Slot", slot_id, slot)
    return released


def free_slots(
    store: ResourceStore, schedule_id: str, *, after: dt.datetime, limit: int = 5
) -> list[Json]:
    """The next free slots of a schedule (the alternatives a 409 offers); not audited: no
    personal data in a Slot. The search ``Slot?schedule=…&status=free&start=ge…&_sort=start``
    cut at ``limit`` in SQL: through the search service, a schedule with more free slots than
    ``limit`` made a paging snapshot of all of them in every losing booking (ADR 0020)."""
    store.flush()
    parsed = parse_search(
        "Slot",
        [
            ("schedule", f"Schedule/{schedule_id}"),
            ("status", "free"),
            ("start", f"ge{rs.instant(after)}"),
            ("_sort", "start"),
        ],
        base_url="",
    )
    slot = aliased(ResourceRow)
    dialect = store.session.get_bind().dialect.name
    query = (
        match_query(parsed.sql_types, parsed.filters, slot, dialect=dialect)
        .add_columns(slot.content)
        .order_by(*order_by(parsed.options.sort, slot))
        .limit(limit)
    )
    return [dict(content) for content in store.session.execute(query).scalars()]
