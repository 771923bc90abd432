"""Booking a Slot exactly once: the store write hook behind every Appointment write.

Installed on the runtime (``install``), the hook runs inside ``ResourceStore.create/update`` —
so ``POST/PUT /fhir/Appointment``, Bundle transactions and batches, and the referral service all
pass through it. For each Slot an Appointment starts holding it takes the Slot's row lock
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite transactions are serialised by ``BEGIN
IMMEDIATE``), checks it is free, bookable now and open to this requester, and marks it busy in
the same transaction. The loser of a race waits for the lock, re-reads the committed Slot, sees
``busy`` and gets a 409 listing free alternatives of the same schedule. An Appointment that
stops holding a Slot (cancelled, no-show, slot changed, deleted) frees it.

Rules (named in the OperationOutcome):
- ``slot-busy`` (409) — the Slot is not free;
- ``reserved-slot-channel`` (403) — a Slot reserved for community referrals booked by a requester
  whose organization is not a CHC or station (china-rules.md §8: the family doctor books), except
  the hospital itself moving a referral made to it (reschedule);
- ``slot-booking-not-open`` (403) — before the Slot's booking-opens time;
- ``outside-contract-needs-referral`` (403) — a contracted resident booked at a hospital outside
  his 1+1+1 combination without a referral to that hospital (china-rules.md §8).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import partial
from typing import Any

from yilian.fhir import systems
from yilian.fhir.appointments import held_slots
from yilian.fhir.errors import invalid
from yilian.fhir.store import ResourceStore, WriteEvent, WriteHook
from yilian.referral import resources as rs
from yilian.referral.contracts import HOSPITAL_TIERS, contracted_organizations, organization_tier
from yilian.referral.errors import conflict, forbidden
from yilian.referral.resources import COMMUNITY_REFERRAL, RELEASED, Json
from yilian.referral.slots import free_slots

CHANNEL_TIERS = {COMMUNITY_REFERRAL: ("community", "station")}  # who may book a reserved slot
ALTERNATIVES = 5


def appointment_patient(appointment: Json) -> str | None:
    for participant in appointment.get("participant", []):
        patient = rs.ref_id(participant.get("actor"), "Patient")
        if patient:
            return patient
    return None


def schedule_organization(store: ResourceStore, schedule_id: str | None) -> str | None:
    if not schedule_id:
        return None
    row = store.current_row("Schedule", schedule_id)
    if row is None or row.deleted:
        return None
    return rs.ref_id(rs.extension(row.content, systems.EXT_SCHEDULE_ORGANIZATION), "Organization")


def referred_to(store: ResourceStore, appointment: Json, organization: str) -> bool:
    """Whether the Appointment is based on an active referral whose performer is this hospital."""
    for based_on in appointment.get("basedOn", []):
        request_id = rs.ref_id(based_on, "ServiceRequest")
        row = store.current_row("ServiceRequest", request_id) if request_id else None
        if row is None or row.deleted:
            continue
        request: Json = row.content
        if request.get("status") not in ("active", "completed"):
            continue
        if any(rs.ref_id(p, "Organization") == organization for p in request.get("performer", [])):
            return True
    return False


def normalise_slot(slot: Json) -> None:
    """Keep the searchable channel tag in step with the channel extension (one source of truth)."""
    if rs.slot_channel(slot) == COMMUNITY_REFERRAL:
        rs.set_tag(slot, systems.SLOT_CHANNEL, COMMUNITY_REFERRAL)
    elif rs.extension(slot, systems.EXT_SLOT_RELEASED):
        rs.set_tag(slot, systems.SLOT_CHANNEL, RELEASED)
    else:
        rs.set_tag(slot, systems.SLOT_CHANNEL, None)


def book(
    store: ResourceStore, slot_id: str, appointment: Json, organization: str | None,
    now: dt.datetime,
) -> None:  # fmt: skip
    row = store.current_row("Slot", slot_id, for_update=True)
    if row is None or row.deleted:
        raise invalid(
            f"Appointment.slot references Slot/{slot_id}, which does not exist",
            expression="Appointment.slot",
            rule="appointment-slot-exists",
            status=422,
        )
    slot = dict(row.content)
    schedule_id = rs.ref_id(slot.get("schedule"), "Schedule")
    if slot.get("status") != "free":
        others = (
            free_slots(store, schedule_id, after=now, limit=ALTERNATIVES) if schedule_id else []
        )
        notes = [
            f"alternative: Slot/{s['id']} {s['start']}"
            + (" (community-referral channel)" if rs.slot_channel(s) else "")
            for s in others
        ]
        raise conflict(
            "slot-busy",
            f"Slot/{slot_id} is {slot.get('status')}; {len(others)} free alternative(s) of "
            f"Schedule/{schedule_id} follow",
            notes=notes,
        )
    opens = rs.parse_instant(rs.extension(slot, systems.EXT_SLOT_BOOKING_OPENS))
    if opens is not None and now < opens:
        raise forbidden(
            "slot-booking-not-open",
            f"Slot/{slot_id} can be booked from {rs.instant(opens)} on",
            expression="Appointment.slot",
        )
    channel = rs.slot_channel(slot)
    hospital = schedule_organization(store, schedule_id)  # read once for both rules below
    if channel is not None and not _hospital_moves_referral(store, appointment, organization,
                                                            hospital):  # fmt: skip
        tier = organization_tier(store, organization) if organization else None
        if tier not in CHANNEL_TIERS.get(channel, ()):
            raise forbidden(
                "reserved-slot-channel",
                f"Slot/{slot_id} is reserved for the {channel} channel until "
                f"{rs.extension(slot, systems.EXT_SLOT_RELEASE_TIME)}; only a community health "
                f"center or station may book it (requester organization: {organization!r})",
                expression="Appointment.slot",
            )
    _check_contract(store, appointment, hospital)
    slot["status"] = "busy"
    _system_update(store, "Slot", slot_id, slot)


def _system_update(store: ResourceStore, res_type: str, res_id: str, resource: Json) -> None:
    """Write a consequence of the rule as the server, past the user's access guard.

    A family doctor may not edit a hospital's Slot, yet his booking makes it busy: the write is
    the rule's, in the same transaction and audit record, so it bypasses ``GuardedStore``. Its
    history and index rows go out with the Appointment's, in the same batches (ADR 0013).
    """
    as_system(store).update(res_type, res_id, resource)


def as_system(store: ResourceStore) -> ResourceStore:
    """The same unit of work (session, audit buffer, hooks, write buffer) without the user's
    access guard."""
    return store.unguarded()


def _hospital_moves_referral(
    store: ResourceStore, appointment: Json, organization: str | None, hospital: str | None
) -> bool:
    """The receiving hospital rescheduling a community referral onto its own reserved slot."""
    return (
        organization is not None
        and organization == hospital
        and referred_to(store, appointment, hospital)
    )


def _check_contract(store: ResourceStore, appointment: Json, hospital: str | None) -> None:
    patient = appointment_patient(appointment)
    if hospital is None or patient is None:
        return
    if organization_tier(store, hospital) not in HOSPITAL_TIERS:
        return
    combination = contracted_organizations(store, patient)
    if combination is None or hospital in combination:
        return
    if not referred_to(store, appointment, hospital):
        raise forbidden(
            "outside-contract-needs-referral",
            f"Patient/{patient} is contracted (1+1+1) with {sorted(combination)}; booking at "
            f"Organization/{hospital} outside the combination needs a referral to it "
            "(Appointment.basedOn a ServiceRequest whose performer is that hospital)",
            expression="Appointment.basedOn",
        )


def free(store: ResourceStore, slot_id: str) -> None:
    row = store.current_row("Slot", slot_id, for_update=True)
    if row is None or row.deleted or row.content.get("status") != "busy":
        return
    _system_update(store, "Slot", slot_id, {**row.content, "status": "free"})


def on_write(organization: str | None, clock: Callable[[], dt.datetime], event: WriteEvent) -> None:
    if event.res_type == "Slot":
        if not event.deleted:
            normalise_slot(event.resource)
        return
    if event.res_type != "Appointment":
        return
    before = held_slots(event.previous)
    after = set() if event.deleted else held_slots(event.resource)  # a deleted one holds none
    now = clock()
    for slot_id in sorted(after - before):  # a fixed lock order: no deadlock between bookings
        book(event.store, slot_id, event.resource, organization, now)
    for slot_id in sorted(before - after):
        free(event.store, slot_id)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def booking_hook(organization: str | None, clock: Callable[[], dt.datetime] = utc_now) -> WriteHook:
    """The write hook for one request whose requester belongs to ``organization``."""
    return partial(on_write, organization, clock)


def requester_organization(ctx: Any) -> str | None:
    """The organization of the authenticated principal behind a request context, if any.

    The principal rides on the context's access guard (``yilian.auth.enforce.RequestGuard``);
    system contexts (CLI, jobs) have none, so they cannot book reserved slots.
    """
    principal = getattr(getattr(ctx, "guard", None), "principal", None)
    organization = getattr(principal, "organization_id", None)
    return organization if isinstance(organization, str) else None


def install(runtime: Any) -> None:
    """Add the booking hook to a runtime's write path (``yilian.app.create_app`` calls this)."""
    runtime.write_hooks.append(lambda ctx: booking_hook(requester_organization(ctx)))
