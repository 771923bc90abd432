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
from yilian.auth.deps import optional_principal
from yilian.fhir.errors import FhirError
from yilian.referral import recognition
from yilian.referral.policy import recognition_items
from yilian.referral.web import ReferralTranslator, _acting, _diagnostics, _local, _now, render
from yilian.web import csrf
from yilian.web.reads import as_user
from yilian.web.routes import error_page, form_fields, language_of, to_login

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


def _clinician(request: Request) -> tuple[Principal | None, Response | None]:
    principal = optional_principal(request)
    if principal is None:
        return None, to_login(request)
    if not principal.is_clinician or _acting(principal) is None:
        t = ReferralTranslator(language_of(request))
        return None, error_page(request, principal, 403, t("denied.title"))
    return principal, None


@router.get("/referral/orders", response_class=HTMLResponse)
def order_form(request: Request) -> Response:
    principal, refused = _clinician(request)
    if principal is None:
        return refused or to_login(request)
    return _page(request, principal, patient=request.query_params.get("patient"))


@router.post("/referral/orders", response_class=HTMLResponse)
async def place_order(request: Request) -> Response:
    principal, refused = _clinician(request)
    if principal is None:
        return refused or to_login(request)
    fields = await form_fields(request, "patient", "item", csrf.CSRF_FIELD)
    t = ReferralTranslator(language_of(request))
    if not csrf.token_matches(request, fields[csrf.CSRF_FIELD]):
        return error_page(request, principal, 403, t("error.csrf"))
    acting = _acting(principal)
    system, _, code = fields["item"].rpartition("|")
    patient = fields["patient"].strip()
    try:
        assert acting is not None  # _clinician checked it
        with as_user(request, principal) as svc:
            made, offers = recognition.order(svc, acting, patient, system, code, _now())
    except FhirError as exc:
        return _page(request, principal, exc.status, error=_diagnostics(exc), patient=patient,
                     item=fields["item"])  # fmt: skip
    shown = [{**o.as_json(), "issued": _local(o.issued)} for o in offers]
    return _page(request, principal, order=made["id"], offers=shown, patient=patient,
                 item=fields["item"])  # fmt: skip


@router.post("/referral/orders/{request_id}/decision", response_class=HTMLResponse)
async def decide(request: Request, request_id: str) -> Response:
    principal, refused = _clinician(request)
    if principal is None:
        return refused or to_login(request)
    fields = await form_fields(request, "decision", "prior", "reason", csrf.CSRF_FIELD)
    t = ReferralTranslator(language_of(request))
    if not csrf.token_matches(request, fields[csrf.CSRF_FIELD]):
        return error_page(request, principal, 403, t("error.csrf"))
    acting = _acting(principal)
    recognise = fields["decision"] == "recognise"
    try:
        assert acting is not None
        with as_user(request, principal) as svc:
            recognition.decide(svc, acting, request_id, recognise=recognise,
                               prior=fields["prior"] or None,
                               reason=fields["reason"].strip() or None, now=_now())  # fmt: skip
    except FhirError as exc:
        return _page(request, principal, exc.status, error=_diagnostics(exc))
    done = t("ref.recognised_done") if recognise else t("ref.declined_done")
    return _page(request, principal, message=done)
