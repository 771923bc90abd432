"""Mutual recognition of test and exam results (检查检验结果互认, china-rules.md §9).

When a clinician orders a lab test or imaging exam (a ServiceRequest), yilian looks for the same
item for that resident at any facility within the item's validity window (items and windows are
configuration: rules/recognition_items.json) and offers the prior results. The clinician then
recognises one (no re-test: the order is revoked, pointing at the prior report) or declines with
a reason (the receiving clinician's judgement decides — 国卫医发〔2022〕6号 as summarised in §9).
The decision is stored on the ServiceRequest (a ``result-recognition`` extension and a tag), so
managers count recognitions, declines and avoided repeat tests with plain searches.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from yilian.fhir import systems
from yilian.fhir.errors import invalid
from yilian.fhir.service import FhirService
from yilian.referral import resources as rs
from yilian.referral.errors import conflict
from yilian.referral.policy import RecognitionItem, recognition_item
from yilian.referral.resources import Json
from yilian.referral.service import Acting

# SNOMED CT categories of R4's servicerequest-category value set.
CATEGORY = {"lab": ("108252007", "Laboratory procedure"), "imaging": ("363679005", "Imaging")}
OFFERED, RECOGNISED, DECLINED = "offered", "recognised", "declined"


@dataclass(frozen=True)
class Offer:
    reference: str  # DiagnosticReport/… or Observation/…
    issued: str
    performer: str | None
    summary: str | None
    links: tuple[str, ...]  # report attachments and imaging references to open

    def as_json(self) -> Json:
        return {
            "reference": self.reference,
            "issued": self.issued,
            "performer": self.performer,
            "summary": self.summary,
            "links": list(self.links),
        }


def _item(system: str, code: str) -> RecognitionItem:
    item = recognition_item(system, code)
    if item is None:
        raise invalid(
            f"{system}|{code} is not an item of the mutual-recognition list "
            "(rules/recognition_items.json)",
            expression="code",
            rule="recognition-item",
        )
    return item


def order(
    service: FhirService, acting: Acting, patient: str, system: str, code: str, now: dt.datetime
) -> tuple[Json, list[Offer]]:
    """Create the lab/imaging ServiceRequest and return it with the prior results on offer."""
    item = _item(system, code)
    service.store.read("Patient", patient, audit=False)
    category = CATEGORY[item.kind]
    request: Json = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [rs.coding(systems.SNOMED_CT, *category)]}],
        "code": {"coding": [rs.coding(system, code, item.display)], "text": item.display},
        "subject": rs.ref("Patient", patient),
        "authoredOn": rs.instant(now),
        "requester": rs.ref("Practitioner", acting.practitioner)
        if acting.practitioner
        else rs.ref("Organization", acting.organization),
    }
    found = prior_results(service, patient, item, now)
    if found:
        rs.set_tag(request, systems.RESULT_RECOGNITION, OFFERED)
    stored = service.store.create(request).resource
    return stored, found


def prior_results(
    service: FhirService, patient: str, item: RecognitionItem, now: dt.datetime
) -> list[Offer]:
    """Final results of the item for the resident, from any facility, within its window."""
    since = now - dt.timedelta(days=item.validity_days)
    offers = []
    for res_type in ("DiagnosticReport", "Observation"):
        bundle = service.search(
            res_type,
            [
                ("patient", f"Patient/{patient}"),
                ("code", f"{item.system}|{item.code}"),
                ("date", f"ge{rs.instant(since)}"),
                ("status", "final,amended,corrected"),
                ("_sort", "-date"),
                ("_count", "20"),
            ],
        )
        for entry in bundle.get("entry", []):
            offers.append(_offer(entry["resource"]))
    return sorted(offers, key=lambda o: o.issued, reverse=True)


def _offer(result: Json) -> Offer:
    when = result.get("issued") or result.get("effectiveDateTime") or ""
    performers = result.get("performer", [])
    performer = (
        performers[0].get("display") or performers[0].get("reference") if performers else None
    )
    links = [a["url"] for a in result.get("presentedForm", []) if a.get("url")]
    links += [r["reference"] for r in result.get("imagingStudy", []) if r.get("reference")]
    links += [m["link"]["reference"] for m in result.get("media", []) if m.get("link")]
    summary = result.get("conclusion") or _value_text(result)
    return Offer(f"{result['resourceType']}/{result['id']}", str(when), performer, summary,
                 tuple(links))  # fmt: skip


def _value_text(result: Json) -> str | None:
    quantity = result.get("valueQuantity")
    if isinstance(quantity, dict) and "value" in quantity:
        return f"{quantity['value']} {quantity.get('unit', '')}".strip()
    return None


def decide(
    service: FhirService,
    acting: Acting,
    request_id: str,
    *,
    recognise: bool,
    prior: str | None,
    reason: str | None,
    now: dt.datetime,
) -> Json:
    """Record the clinician's decision on an order's offered prior results."""
    request = dict(service.store.read("ServiceRequest", request_id))
    code = request.get("code", {}).get("coding", [{}])[0]
    item = _item(str(code.get("system")), str(code.get("code")))
    subject = rs.ref_id(request.get("subject"), "Patient")
    if rs.tag_of(request, systems.RESULT_RECOGNITION) in (RECOGNISED, DECLINED):
        raise conflict("recognition-decided", f"ServiceRequest/{request_id} is already decided")
    if request.get("status") != "active":
        raise conflict(
            "recognition-order-active",
            f"ServiceRequest/{request_id} is {request.get('status')}, not active",
        )
    parts: list[Json] = [{"url": "decision", "valueCode": RECOGNISED if recognise else DECLINED},
                         {"url": "decidedAt", "valueDateTime": rs.instant(now)}]  # fmt: skip
    if recognise:
        offered = {o.reference for o in prior_results(service, str(subject), item, now)}
        if prior not in offered:
            raise invalid(
                f"prior {prior!r} is not a result of this item for the patient within "
                f"{item.validity_days} days; offered: {sorted(offered)}",
                expression="prior",
                rule="recognition-prior",
            )
        parts.append({"url": "prior", "valueReference": {"reference": prior}})
        request["status"] = "revoked"  # not performed: the prior result is reused
        request.setdefault("supportingInfo", []).append({"reference": prior})
    else:
        if not reason or not reason.strip():
            raise invalid(
                "declining a prior result needs a reason (china-rules.md §9)",
                expression="reason",
                rule="recognition-reason",
            )
        parts.append({"url": "reason", "valueString": reason[:1000]})
    rs.set_extension(request, systems.EXT_RECOGNITION, "extension", parts)
    rs.set_tag(request, systems.RESULT_RECOGNITION, RECOGNISED if recognise else DECLINED)
    stored: Json = service.store.update("ServiceRequest", request_id, request).resource
    return stored


def counts(service: FhirService) -> dict[str, int]:
    """How many orders had prior results offered, recognised (repeat tests avoided), declined."""
    out = {}
    for state in (OFFERED, RECOGNISED, DECLINED):
        bundle = service.search(
            "ServiceRequest",
            [("_tag", f"{systems.RESULT_RECOGNITION}|{state}"), ("_summary", "count")],
        )
        out[state] = int(bundle.get("total", 0))
    out["offered"] += out[RECOGNISED] + out[DECLINED]  # a decided order was offered first
    out["avoided_repeat_tests"] = out[RECOGNISED]
    return out
