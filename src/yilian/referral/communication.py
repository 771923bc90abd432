"""A referral's messages as FHIR Communication: between the CHC and the hospital, and to the
resident ("where and when to go").

Each message is a Communication ``basedOn`` the referral's ServiceRequest (``partOf`` its Task),
``subject`` the patient, with a ``sender``, ``recipient``s and a text ``payload``; the category
(``referral-message``) says what it is:

- ``notification`` — written by the workflow on each step (referred, accepted, declined with the
  reason, rescheduled, cancelled, referred down), from the acting facility to the other one;
- ``instruction`` — to the resident: where (the clinic's Location) and when (the Appointment's
  start) to go, or to see his family doctor after a down-referral;
- ``note`` — free text one facility sends the other about the referral.

They are ordinary resources of the patient's compartment: written as the acting user (the access
policy and audit apply), read and searched through ``/fhir/Communication?based-on=…``.
"""

from __future__ import annotations

import datetime as dt

from yilian.fhir import systems
from yilian.fhir.errors import invalid
from yilian.fhir.service import FhirService
from yilian.referral import resources as rs
from yilian.referral.errors import forbidden
from yilian.referral.resources import Json

KINDS = {"notification": "转诊通知", "instruction": "就诊指引", "note": "留言"}
MAX_TEXT = 2000


def _sender(organization: str, practitioner: str | None) -> Json:
    if practitioner:
        return rs.ref("Practitioner", practitioner)
    return rs.ref("Organization", organization)


def send(
    service: FhirService,
    task: Json,
    kind: str,
    text: str,
    *,
    organization: str,
    practitioner: str | None,
    recipients: list[Json],
    now: dt.datetime,
) -> Json:
    """Write one Communication about the referral whose Task is ``task``."""
    request_id = rs.ref_id(task.get("focus"), "ServiceRequest")
    message: Json = {
        "resourceType": "Communication",
        "status": "completed",
        "basedOn": [rs.ref("ServiceRequest", str(request_id))],
        "partOf": [rs.ref("Task", task["id"])],
        "category": [{"coding": [rs.coding(systems.REFERRAL_MESSAGE, kind, KINDS[kind])]}],
        "subject": task["for"],
        "sent": rs.instant(now),
        "sender": _sender(organization, practitioner),
        "recipient": recipients,
        "payload": [{"contentString": text[:MAX_TEXT]}],
    }
    stored: Json = service.store.create(message).resource
    return stored


def other_party(task: Json, organization: str) -> Json:
    """The facility at the other end of the referral from ``organization``."""
    requester = rs.ref_id(task.get("requester"), "Organization")
    owner = rs.ref_id(task.get("owner"), "Organization")
    if organization not in (requester, owner):
        raise forbidden(
            "referral-message-party",
            f"only the referring (Organization/{requester}) or receiving (Organization/{owner}) "
            "facility writes about this referral",
        )
    return rs.ref("Organization", str(owner if organization == requester else requester))


def note(
    service: FhirService, task: Json, text: str, *, organization: str, practitioner: str | None,
    now: dt.datetime,
) -> Json:  # fmt: skip
    """A free-text note from one facility of the referral to the other."""
    if not text.strip() or len(text) > MAX_TEXT:
        raise invalid(
            f"text is required (at most {MAX_TEXT} characters)",
            expression="text",
            rule="referral-message-text",
        )
    recipient = other_party(task, organization)
    return send(service, task, "note", text.strip(), organization=organization,
                practitioner=practitioner, recipients=[recipient], now=now)  # fmt: skip


def where_and_when(appointment: Json) -> str:
    """The resident's instruction for a booked Appointment (China time, the clinic's name)."""
    start = rs.parse_instant(appointment.get("start"))
    when = start.astimezone(rs.CHINA_TIME).strftime("%Y-%m-%d %H:%M") if start else "—"
    place = next(
        (
            str(p["actor"].get("display") or p["actor"]["reference"])
            for p in appointment.get("participant", [])
            if str(p.get("actor", {}).get("reference", "")).startswith("Location/")
        ),
        "预约医院",
    )
    return f"请于 {when} 到 {place} 就诊，携带身份证、医保卡和既往检查报告。"


def thread(service: FhirService, request_id: str) -> list[Json]:
    """The referral's messages, oldest first."""
    bundle = service.search(
        "Communication",
        [("based-on", f"ServiceRequest/{request_id}"), ("_sort", "sent"), ("_count", "200")],
    )
    return [e["resource"] for e in bundle.get("entry", []) if e["resource"].get("resourceType")
            == "Communication"]  # fmt: skip
