"""Two-way referral (双向转诊): refer up (optionally booking a reserved slot in the same step),
answer a referral, refer down at discharge, and the hospital's queue and the overdue lists.

Every change is a FHIR write through the store, so it is validated, versioned and audited, and
the booking rules of ``yilian.referral.booking`` apply to the Appointments made here. The caller
(the API edge) owns the transaction: refer-and-book is atomic because it is one unit of work.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field

from yilian.fhir import systems
from yilian.fhir.errors import invalid
from yilian.fhir.service import FhirService
from yilian.referral import communication
from yilian.referral import resources as rs
from yilian.referral.booking import schedule_organization
from yilian.referral.contracts import contracted_organizations, family_doctor_of, organization_tier
from yilian.referral.errors import forbidden, unprocessable
from yilian.referral.policy import deadlines, reservation_policy
from yilian.referral.queue import CONTRACTED, PRIORITY_RANK, queue_page
from yilian.referral.resources import Json
from yilian.referral.slots import search_all
from yilian.referral.workflow import OPEN, TRANSITIONS, transition

DIRECTIONS = {"up": "上转", "down": "下转"}
SUPPORTING_TYPES = ("DiagnosticReport", "Observation", "DocumentReference", "ImagingStudy",
                    "CarePlan", "Condition")  # fmt: skip
HOSPITAL_TIERS = ("district-regional", "municipal")
COMMUNITY_TIERS = ("community", "station")


@dataclass(frozen=True)
class Acting:
    """Who acts: the user's organization and, for clinicians, their Practitioner id."""

    organization: str
    practitioner: str | None = None


@dataclass
class ReferralInput:
    patient: str
    target: str  # Organization id of the receiving facility
    reason: str  # free text (the clinician's words), required
    priority: str = "routine"
    reason_code: str | None = None  # ICD-10 code, optional
    supporting: list[str] = field(default_factory=list)  # "DiagnosticReport/…" references
    note: str | None = None


@dataclass
class Referral:
    request: Json
    task: Json
    appointment: Json | None = None
    documents: list[Json] = field(default_factory=list)


def _check_input(service: FhirService, data: ReferralInput) -> None:
    if data.priority not in PRIORITY_RANK:
        raise invalid(
            f"priority must be one of {', '.join(PRIORITY_RANK)}, not {data.priority!r}",
            expression="priority",
            rule="referral-priority",
        )
    if not data.reason.strip() or len(data.reason) > 2000:
        raise invalid(
            "reason is required (at most 2000 characters)",
            expression="reason",
            rule="referral-reason",
        )
    for index, reference in enumerate(data.supporting):
        kind, _, res_id = reference.partition("/")
        if kind not in SUPPORTING_TYPES or not res_id:
            raise invalid(
                f"supporting[{index}] {reference!r} must reference one of "
                f"{', '.join(SUPPORTING_TYPES)}",
                expression=f"supporting[{index}]",
                rule="referral-supporting",
            )
        service.store.read(kind, res_id, audit=False)  # 404 names a missing result
    service.store.read("Patient", data.patient, audit=False)


def _deadline(direction: str, priority: str, authored: dt.datetime) -> tuple[str, dt.datetime]:
    rules = deadlines()
    if direction == "down":
        return "down-action", authored + dt.timedelta(days=rules.down_action_days)
    if priority != "routine":
        return "up-urgent-follow-up", authored + dt.timedelta(days=rules.up_urgent_follow_up_days)
    return "up-routine-follow-up", authored + dt.timedelta(days=rules.up_routine_follow_up_days)


def _request(data: ReferralInput, direction: str, acting: Acting, now: dt.datetime) -> Json:
    request: Json = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [
            {"coding": [rs.coding(systems.SNOMED_CT, systems.SNOMED_REFERRAL, "Patient referral")]}
        ],
        "code": {
            "coding": [rs.coding(systems.REFERRAL_DIRECTION, direction, DIRECTIONS[direction])],
            "text": DIRECTIONS[direction],
        },
        "priority": data.priority,
        "subject": rs.ref("Patient", data.patient),
        "authoredOn": rs.instant(now),
        "requester": rs.ref("Practitioner", acting.practitioner)
        if acting.practitioner
        else rs.ref("Organization", acting.organization),
        "performer": [rs.ref("Organization", data.target)],
        "reasonCode": [{"text": data.reason}],
    }
    if data.reason_code:
        request["reasonCode"][0]["coding"] = [rs.coding(systems.ICD10_CN, data.reason_code)]
    if data.supporting:
        request["supportingInfo"] = [{"reference": r} for r in data.supporting]
    if data.note:
        request["note"] = [{"text": data.note}]
    return request


def _task(
    request: Json, direction: str, acting: Acting, target: str, now: dt.datetime, contracted: bool
) -> Json:
    rule, due = _deadline(direction, str(request["priority"]), now)
    task: Json = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": request["priority"],
        "code": {
            "coding": [rs.coding(systems.HL7_TASK_CODE, "fulfill", "Fulfill the focal request")]
        },
        "focus": rs.ref("ServiceRequest", request["id"]),
        "for": request["subject"],
        "authoredOn": rs.instant(now),
        "lastModified": rs.instant(now),
        "requester": rs.ref("Organization", acting.organization),
        "owner": rs.ref("Organization", target),
        "restriction": {"period": {"end": rs.instant(due)}},
        "extension": [{"url": systems.EXT_TASK_DEADLINE_KIND, "valueCode": rule}],
    }
    rs.set_tag(task, systems.REFERRAL_DIRECTION, direction)
    if contracted:
        rs.set_tag(task, systems.REFERRAL_PRIORITY_GROUP, CONTRACTED)
    return task


def refer(
    service: FhirService, acting: Acting, data: ReferralInput, direction: str, now: dt.datetime
) -> Referral:
    """Create the referral ServiceRequest and its Task (status requested)."""
    _check_input(service, data)
    store = service.store
    source_tier = organization_tier(store, acting.organization)
    target_tier = organization_tier(store, data.target)
    if target_tier is None:
        raise invalid(
            f"target Organization/{data.target} is not a known facility with a tier",
            expression="target",
            rule="referral-target",
        )
    up = (COMMUNITY_TIERS, HOSPITAL_TIERS)
    wanted = up if direction == "up" else (HOSPITAL_TIERS, COMMUNITY_TIERS)
    if source_tier not in wanted[0] or target_tier not in wanted[1]:
        raise unprocessable(
            f"referral-{direction}",
            f"a {direction}-referral goes from a {'/'.join(wanted[0])} facility to a "
            f"{'/'.join(wanted[1])} one; here {source_tier!r} → {target_tier!r}",
            expression="target",
        )
    contracted = (
        direction == "up"
        and acting.practitioner is not None
        and family_doctor_of(store, data.patient) == acting.practitioner
    )
    request = store.create(_request(data, direction, acting, now)).resource
    task = store.create(_task(request, direction, acting, data.target, now, contracted)).resource
    communication.send(service, task, "notification", f"{DIRECTIONS[direction]}转诊：{data.reason}",
                       organization=acting.organization, practitioner=acting.practitioner,
                       recipients=[rs.ref("Organization", data.target)], now=now)  # fmt: skip
    return Referral(request, task)


def refer_and_book(
    service: FhirService, acting: Acting, data: ReferralInput, slot_id: str, now: dt.datetime
) -> Referral:
    """Refer up and book a (reserved) slot of the receiving hospital in one unit of work."""
    slot_row = service.store.current_row("Slot", slot_id)
    if slot_row is None or slot_row.deleted:
        raise invalid(f"Slot/{slot_id} does not exist", expression="slot", rule="slot-exists")
    schedule_id = rs.ref_id(slot_row.content.get("schedule"), "Schedule")
    hospital = schedule_organization(service.store, schedule_id)
    if hospital != data.target:
        raise unprocessable(
            "refer-and-book-same-hospital",
            f"Slot/{slot_id} belongs to Organization/{hospital}, not the referral's target "
            f"Organization/{data.target}",
            expression="slot",
        )
    slot = slot_row.content
    _check_urgent_window(service, slot, schedule_id, str(hospital), data.priority, now)
    referral = refer(service, acting, data, "up", now)
    appointment: Json = {
        "resourceType": "Appointment",
        "status": "booked",
        "basedOn": [rs.ref("ServiceRequest", referral.request["id"])],
        "slot": [rs.ref("Slot", slot_id)],
        "start": slot["start"],
        "end": slot["end"],
        "created": now.date().isoformat(),
        "description": f"转诊预约 {data.reason[:80]}",
        "participant": [
            {"actor": rs.ref("Patient", data.patient), "required": "required", "status": "accepted"}
        ],
    }
    place = _place(service, schedule_id)
    if place is not None:  # where to go: the clinic's Location, with its name
        appointment["participant"].append({"actor": place, "status": "accepted"})
    referral.appointment = service.store.create(appointment).resource  # books the slot (hook)
    _instruct(service, acting, referral.task, communication.where_and_when(referral.appointment),
              now)  # fmt: skip
    return referral


def _instruct(
    service: FhirService, acting: Acting, task: Json, text: str, now: dt.datetime
) -> None:
    """Tell the resident where and when to go (a Communication to the Patient)."""
    communication.send(service, task, "instruction", text, organization=acting.organization,
                       practitioner=acting.practitioner, recipients=[task["for"]],
                       now=now)  # fmt: skip


def _place(service: FhirService, schedule_id: str | None) -> Json | None:
    row = service.store.current_row("Schedule", schedule_id) if schedule_id else None
    if row is None:
        return None
    schedule: Json = row.content
    for actor in schedule.get("actor", []):
        location = rs.ref_id(actor, "Location")
        found = service.store.current_row("Location", location) if location else None
        if location and found is not None and not found.deleted:
            return rs.ref("Location", location, str(found.content.get("name", location)))
    return None


def urgent_window(service: FhirService, schedule_id: str | None, hospital: str) -> dt.timedelta:
    """The department's urgent window (china-rules.md §8: slots of the next 2-3 days)."""
    row = service.store.current_row("Schedule", schedule_id) if schedule_id else None
    schedule = row.content if row is not None else {}
    department = rs.code_of(schedule.get("specialty", []), systems.DEPARTMENT) or ""
    level = rs.code_of(schedule.get("serviceCategory", []), systems.CLINIC_LEVEL) or "general"
    rules = reservation_policy().for_department(hospital, department, level)
    return dt.timedelta(days=rules.urgent_window_days)


def _check_urgent_window(
    service: FhirService, slot: Json, schedule_id: str | None, hospital: str, priority: str,
    now: dt.datetime,
) -> None:  # fmt: skip
    """Reserved slots inside the urgent window are kept for urgent referrals."""
    start = rs.parse_instant(slot.get("start"))
    if rs.slot_channel(slot) is None or priority != "routine" or start is None:
        return
    window = urgent_window(service, schedule_id, hospital)
    if start - now < window:
        raise forbidden(
            "reserved-urgent-window",
            f"Slot/{slot['id']} starts within {window.days} days: reserved slots that close "
            "are kept for urgent referrals (china-rules.md §8); choose a later slot or mark the "
            "referral urgent",
            expression="slot",
        )


def _load(service: FhirService, task_id: str) -> tuple[Json, Json]:
    task = dict(service.store.read("Task", task_id))
    request_id = rs.ref_id(task.get("focus"), "ServiceRequest")
    if request_id is None or rs.tag_of(task, systems.REFERRAL_DIRECTION) is None:
        raise invalid(f"Task/{task_id} is not a referral", rule="referral-task")
    return task, dict(service.store.read("ServiceRequest", request_id))


def _appointments(service: FhirService, request_id: str) -> list[Json]:
    found = service.search(
        "Appointment", [("based-on", f"ServiceRequest/{request_id}"), ("_count", "50")]
    )
    return [e["resource"] for e in found.get("entry", []) if e["resource"]["status"] == "booked"]


def act(
    service: FhirService,
    acting: Acting,
    task_id: str,
    action: str,
    now: dt.datetime,
    *,
    reason: str | None = None,
    slot: str | None = None,
) -> Referral:
    """Apply one workflow action (accept, decline, reschedule, …) to a referral's Task."""
    task, request = _load(service, task_id)
    step = transition(action, str(task["status"]))
    responsible = rs.ref_id(
        task.get("owner" if step.by == "owner" else "requester"), "Organization"
    )
    if responsible != acting.organization:
        raise forbidden(
            "referral-actor",
            f"only the {'receiving' if step.by == 'owner' else 'referring'} organization "
            f"(Organization/{responsible}) may {action} this referral",
        )
    if step.needs_reason and not (reason and reason.strip()):
        raise invalid(f"{action} needs a reason", expression="reason", rule="referral-reason")
    referral = Referral(request, task)
    if action == "reschedule":
        referral.appointment = _reschedule(service, request, slot, reason or "", now)
    elif action in ("decline", "cancel"):
        for booked in _appointments(service, request["id"]):
            service.store.update(
                "Appointment",
                booked["id"],
                {**booked, "status": "cancelled", "cancelationReason": {"text": reason}},
            )  # fmt: skip  (frees the slot)
    if step.target is not None:
        task["status"] = step.target
    task["businessStatus"] = {
        "coding": [rs.coding(systems.REFERRAL_ACTION, action, TRANSITIONS[action].display)],
        "text": TRANSITIONS[action].display,
    }
    if reason:
        task["statusReason"] = {"text": reason}
    task["lastModified"] = rs.instant(now)
    referral.task = service.store.update("Task", task_id, task).resource
    _notify_step(service, acting, referral, action, reason, now)
    new_request_status = {"completed": "completed", "rejected": "revoked", "cancelled": "revoked"}
    if step.target in new_request_status:
        request["status"] = new_request_status[step.target]
        referral.request = service.store.update("ServiceRequest", request["id"], request).resource
    return referral


def _notify_step(
    service: FhirService, acting: Acting, referral: Referral, action: str, reason: str | None,
    now: dt.datetime,
) -> None:  # fmt: skip
    """Each step is a message to the other facility; accepting or moving a booking also tells
    the resident where and when to go."""
    text = TRANSITIONS[action].display + (f"：{reason}" if reason else "")
    communication.send(service, referral.task, "notification", text,
                       organization=acting.organization, practitioner=acting.practitioner,
                       recipients=[communication.other_party(referral.task, acting.organization)],
                       now=now)  # fmt: skip
    if action == "reschedule" and referral.appointment is not None:
        booked = [referral.appointment]
    elif action == "accept":
        booked = _appointments(service, referral.request["id"])
    else:
        return
    heading = "医院已接受您的转诊。" if action == "accept" else "您的转诊预约已改期。"
    for appointment in booked:
        text = heading + communication.where_and_when(appointment)
        _instruct(service, acting, referral.task, text, now)


def _reschedule(
    service: FhirService, request: Json, slot: str | None, reason: str, now: dt.datetime
) -> Json:
    if not slot:
        raise invalid("reschedule needs the new slot", expression="slot", rule="referral-slot")
    for booked in _appointments(service, request["id"]):
        service.store.update(
            "Appointment", booked["id"], {**booked, "status": "cancelled",
                                          "cancelationReason": {"text": reason}},
        )  # fmt: skip
    row = service.store.current_row("Slot", slot)
    if row is None or row.deleted:
        raise invalid(f"Slot/{slot} does not exist", expression="slot", rule="slot-exists")
    appointment: Json = {
        "resourceType": "Appointment",
        "status": "booked",
        "basedOn": [rs.ref("ServiceRequest", request["id"])],
        "slot": [rs.ref("Slot", slot)],
        "start": row.content["start"],
        "end": row.content["end"],
        "created": now.date().isoformat(),
        "participant": [
            {"actor": request["subject"], "required": "required", "status": "accepted"}
        ],
    }
    place = _place(service, rs.ref_id(row.content.get("schedule"), "Schedule"))
    if place is not None:
        appointment["participant"].append({"actor": place, "status": "accepted"})
    created: Json = service.store.create(appointment).resource
    return created


@dataclass
class DischargeInput:
    patient: str
    summary: str  # discharge summary (出院小结), text
    follow_up_plan: str  # follow-up plan for the CHC
    reason: str
    target: str | None = None  # the CHC; default: the patient's contracted CHC
    priority: str = "routine"


def refer_down(
    service: FhirService, acting: Acting, data: DischargeInput, now: dt.datetime
) -> Referral:
    """Refer a patient down at discharge, with the discharge summary and the follow-up plan."""
    for name in ("summary", "follow_up_plan"):
        text = getattr(data, name)
        if not text.strip() or len(text) > 20000:
            raise invalid(
                f"{name} is required (at most 20000 characters)",
                expression=name,
                rule="down-referral-documents",
            )
    target = data.target or _contracted_chc(service, data.patient)
    service.store.read("Patient", data.patient, audit=False)
    author = (
        rs.ref("Practitioner", acting.practitioner)
        if acting.practitioner
        else rs.ref("Organization", acting.organization)
    )
    summary = service.store.create(
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": {"text": "出院小结 Discharge summary"},
            "subject": rs.ref("Patient", data.patient),
            "date": rs.instant(now),
            "author": [author],
            "custodian": rs.ref("Organization", acting.organization),
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "data": base64.b64encode(data.summary.encode()).decode(),
                        "title": "出院小结",
                    }
                }
            ],
        }
    ).resource
    plan = service.store.create(
        {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "title": "下转随访计划 Follow-up plan",
            "description": data.follow_up_plan,
            "subject": rs.ref("Patient", data.patient),
            "created": rs.instant(now),
            "author": author,
        }
    ).resource
    referral = refer(
        service,
        acting,
        ReferralInput(
            data.patient,
            target,
            data.reason,
            data.priority,
            supporting=[f"DocumentReference/{summary['id']}", f"CarePlan/{plan['id']}"],
        ),
        "down",
        now,
    )
    referral.documents = [summary, plan]
    days, chc = deadlines().down_action_days, _name(service, target)
    text = f"您已从医院转回社区：请在 {days} 天内联系{chc}的签约家庭医生随访。随访计划："
    _instruct(service, acting, referral.task, text + data.follow_up_plan[:500], now)
    return referral


def _name(service: FhirService, organization: str) -> str:
    row = service.store.current_row("Organization", organization)
    return str(row.content.get("name", organization)) if row is not None else organization


def _contracted_chc(service: FhirService, patient: str) -> str:
    for org in sorted(contracted_organizations(service.store, patient) or ()):
        if organization_tier(service.store, org) == "community":
            return org
    raise invalid(
        f"Patient/{patient} has no contracted CHC; name the target CHC",
        expression="target",
        rule="down-referral-target",
    )


def queue_key(task: Json) -> tuple[int, int, str]:
    """Most urgent first; then contracted residents referred by their family doctor (seed 004
    附件4 (二)2: 优先就诊、优先检查、优先住院); then the longest waiting."""
    contracted = rs.tag_of(task, systems.REFERRAL_PRIORITY_GROUP) == CONTRACTED
    authored = rs.parse_instant(task.get("authoredOn")) or dt.datetime.max.replace(tzinfo=dt.UTC)
    return (PRIORITY_RANK.get(str(task.get("priority")), 9), 0 if contracted else 1,
            authored.isoformat())  # fmt: skip


def queue(service: FhirService, organization: str, *, limit: int = 100) -> list[Json]:
    """The first ``limit`` of the organization's incoming referrals awaiting an answer, in
    ``queue_key`` order (``yilian.referral.queue``: the order in SQL, not per priority group)."""
    return queue_page(service, organization, limit=limit).tasks


def overdue(service: FhirService, organization: str, now: dt.datetime) -> list[Json]:
    """Referrals past their deadline that this organization must act on.

    - down-referrals it received and has not yet accepted within ``down_action_days``;
    - up-referrals it made whose follow-up (china-rules.md §4.1: urgent within 2 weeks) is due
      and not recorded, unless the referral was cancelled.
    """
    late = []
    received = search_all(
        service,
        "Task",
        [("owner", f"Organization/{organization}"), ("status", "requested,received"),
         ("_tag", f"{systems.REFERRAL_DIRECTION}|down")],
    )  # fmt: skip
    made = search_all(
        service,
        "Task",
        [
            ("requester", f"Organization/{organization}"),
            ("_tag", f"{systems.REFERRAL_DIRECTION}|up"),
            ("status", ",".join([*OPEN, "completed", "rejected"])),
        ],
    )
    for task in [*received, *made]:
        due = rs.parse_instant((task.get("restriction") or {}).get("period", {}).get("end"))
        followed = rs.code_of(task.get("businessStatus", {}), systems.REFERRAL_ACTION)
        if due is not None and due < now and followed != "follow-up":
            late.append(task)
    return sorted(late, key=lambda t: str(t["restriction"]["period"]["end"]))
