"""The mutual-recognition page (检查检验结果互认): a clinician orders a lab test or imaging exam,
sees the resident's results of that item from any facility within its validity window, and
recognises one (no repeat test) or records why the test is repeated. The logic and the record
are ``recognition``'s (the decision is stored on the order's ServiceRequest, counted for the
managers); same shell rules as ``referral.web``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from yilian.auth import Principal
from yilian.fhir.errors import FhirError
from yilian.referral import recognition
from yilian.referral.policy import recognition_items
from yilian.referral.web import ReferralTranslator, _diagnostics, _local, _now, render
from yilian.referral.web_forms import Gate, let_in, let_post
from yilian.web.reads import as_user
from yilian.web.routes import language_of

router = APIRouter(include_in_schema=False)


def _items(t: ReferralTranslator) -> list[dict[str, str]]:
    return [
        {"key": f"{i.system}|{i.code}",
         "label": f"{i.display} ({i.kind}, {t('ref.validity', days=i.validity_days)})"}
        for i in recognition_items()
    ]  # fmt: skip


def _page(request: Request, principal: Principal, status: int = 200, **context: Any) -> Response:
    t = ReferralTranslator(language_of(request))
    values = {"items": _items(t), "order": None, "offers": [], "message": None, "error": None,
              "patient": None, "item": None, **context}  # fmt: skip
    return render(request, "referral_order.html", values, principal, status=status)


def _clinician(principal: Principal) -> bool:
    return principal.is_clinician


@router.get("/referral/orders", response_class=HTMLResponse)
def order_form(request: Request) -> Response:
    gate = let_in(request, _clinician)
    if not isinstance(gate, Gate):
        return gate
    return _page(request, gate.principal, patient=gate.fields.get("patient"))


@router.post("/referral/orders", response_class=HTMLResponse)
async def place_order(request: Request) -> Response:
    gate = await let_post(request, _clinician, "patient", "item")
    if not isinstance(gate, Gate):
        return gate
    fields, principal = gate.fields, gate.principal
    system, _, code = fields["item"].rpartition("|")
    patient = fields["patient"].strip()
    try:
        with as_user(request, principal) as svc:
            made, offers = recognition.order(svc, gate.acting, patient, system, code, _now())
    except FhirError as exc:
        return _page(request, principal, exc.status, error=_diagnostics(exc), patient=patient,
                     item=fields["item"])  # fmt: skip
    shown = [{**o.as_json(), "issued": _local(o.issued)} for o in offers]
    return _page(request, principal, order=made["id"], offers=shown, patient=patient,
                 item=fields["item"])  # fmt: skip


@router.post("/referral/orders/{request_id}/decision", response_class=HTMLResponse)
async def decide(request: Request, request_id: str) -> Response:
    gate = await let_post(request, _clinician, "decision", "prior", "reason")
    if not isinstance(gate, Gate):
        return gate
    fields, principal = gate.fields, gate.principal
    recognise = fields["decision"] == "recognise"
    try:
        with as_user(request, principal) as svc:
            recognition.decide(svc, gate.acting, request_id, recognise=recognise,
                               prior=fields["prior"] or None,
                               reason=fields["reason"].strip() or None, now=_now())  # fmt: skip
    except FhirError as exc:
        return _page(request, principal, exc.status, error=_diagnostics(exc))
    t = ReferralTranslator(language_of(request))
    done = t("ref.recognised_done") if recognise else t("ref.declined_done")
    return _page(request, principal, message=done)
