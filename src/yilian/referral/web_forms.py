"""The two referral pages that are forms: the family doctor signs a 1+1+1 contract, the hospital
refers a patient down at discharge. Same shell rules as ``referral.web`` (CSRF, zh-CN default,
reads and writes as the signed-in user); the logic is the API's (``contracts``, ``service``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from yilian.auth import Principal, Role
from yilian.auth.deps import optional_principal
from yilian.fhir import systems
from yilian.fhir.errors import FhirError
from yilian.fhir.service import FhirService
from yilian.referral import contracts, service
from yilian.referral.service import Acting, DischargeInput
from yilian.referral.web import ReferralTranslator, _acting, _diagnostics, _now, render
from yilian.web import csrf
from yilian.web.reads import as_user, resources_of
from yilian.web.routes import error_page, form_fields, language_of, to_login

router = APIRouter(include_in_schema=False)
Allowed = Callable[[Principal], bool]


@dataclass(frozen=True)
class Gate:
    """A signed-in user the page allows, acting for his organization; for a form, its fields."""

    principal: Principal
    acting: Acting
    fields: dict[str, str]


def let_in(request: Request, allowed: Allowed) -> Gate | Response:
    """The sign-in redirect or the 403 page, or who may use this page."""
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    acting = _acting(principal)
    if acting is None or not allowed(principal):
        t = ReferralTranslator(language_of(request))
        return error_page(request, principal, 403, t("denied.title"))
    return Gate(principal, acting, dict(request.query_params))


async def let_post(request: Request, allowed: Allowed, *names: str) -> Gate | Response:
    """``let_in`` for a form: also its fields, and 403 when its CSRF token does not match."""
    gate = let_in(request, allowed)
    if not isinstance(gate, Gate):
        return gate
    fields = await form_fields(request, *names, csrf.CSRF_FIELD)
    if not csrf.token_matches(request, fields[csrf.CSRF_FIELD]):
        t = ReferralTranslator(language_of(request))
        return error_page(request, gate.principal, 403, t("error.csrf"))
    return Gate(gate.principal, gate.acting, fields)


def _doctor(principal: Principal) -> bool:
    return principal.role is Role.FAMILY_DOCTOR and bool(principal.practitioner_id)


def _desk(principal: Principal) -> bool:
    return principal.role is Role.SPECIALIST


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    value: str = ""
    options: tuple[tuple[str, str], ...] = ()
    long: bool = False
    max: int = 2000
    required: bool = True


def _tier_options(svc: FhirService, tier: str) -> tuple[tuple[str, str], ...]:
    bundle = svc.search(
        "Organization", [("type", f"{systems.ORGANIZATION_TIER}|{tier}"), ("_count", "200")]
    )
    return tuple((o["id"], str(o.get("name", o["id"]))) for o in resources_of(bundle))


def _page(
    request: Request, principal: Principal, form_id: str, title: str, submit: str,
    fields: list[Field], *, error: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    context: dict[str, Any] = {"title": title, "intro": None, "form_id": form_id,
                               "submit": submit, "fields": fields, "error": error}  # fmt: skip
    return render(request, "referral_form.html", context, principal, status=status)


# ------------------------------------------------------------------ 1+1+1 contract

CONTRACT_FIELDS = ("patient", "district_hospital", "municipal_hospital")


def _contract_page(request: Request, principal: Principal, values: dict[str, str], *,
                   error: str | None = None, status: int = 200) -> Response:  # fmt: skip
    t = ReferralTranslator(language_of(request))
    with as_user(request, principal) as svc:
        district = _tier_options(svc, "district-regional")
        municipal = _tier_options(svc, "municipal")
    fields = [
        Field("patient", t("ref.patient_id"), values.get("patient", ""), max=64),
        Field("district_hospital", t("ref.district_hospital"),
              values.get("district_hospital", ""), district),
        Field("municipal_hospital", t("ref.municipal_hospital"),
              values.get("municipal_hospital", ""), municipal),
    ]  # fmt: skip
    return _page(request, principal, "contract", t("ref.sign"), t("ref.sign"), fields,
                 error=error, status=status)  # fmt: skip


@router.get("/referral/contract", response_class=HTMLResponse)
def contract_form(request: Request) -> Response:
    gate = let_in(request, _doctor)
    if not isinstance(gate, Gate):
        return gate
    return _contract_page(request, gate.principal, gate.fields)


@router.post("/referral/contract", response_class=HTMLResponse)
async def sign_contract(request: Request) -> Response:
    gate = await let_post(request, _doctor, *CONTRACT_FIELDS)
    if not isinstance(gate, Gate):
        return gate
    principal, acting, values = gate.principal, gate.acting, gate.fields
    signing = contracts.SignRequest(
        values["patient"].strip(), str(acting.practitioner), acting.organization,
        values["district_hospital"], values["municipal_hospital"], _now().date(),
    )  # fmt: skip
    try:
        contracts.check_signer(signing, acting.organization, acting.practitioner)
        with as_user(request, principal) as svc:
            contracts.sign(svc.store, signing)
    except FhirError as exc:
        return _contract_page(request, principal, values, error=_diagnostics(exc),
                              status=exc.status)  # fmt: skip
    return RedirectResponse(f"/referral/new?patient={quote(signing.patient)}", status_code=303)


# ------------------------------------------------------------------ refer down

DOWN_FIELDS = ("patient", "summary", "follow_up_plan", "reason")


def _down_page(request: Request, principal: Principal, values: dict[str, str], *,
               error: str | None = None, status: int = 200) -> Response:  # fmt: skip
    t = ReferralTranslator(language_of(request))
    fields = [
        Field("patient", t("ref.patient_id"), values.get("patient", ""), max=64),
        Field("summary", t("ref.summary"), values.get("summary", ""), long=True, max=20000),
        Field("follow_up_plan", t("ref.follow_up_plan"), values.get("follow_up_plan", ""),
              long=True, max=20000),
        Field("reason", t("ref.reason"), values.get("reason", "")),
    ]  # fmt: skip
    return _page(request, principal, "refer-down", t("ref.refer_down"), t("ref.refer_down"),
                 fields, error=error, status=status)  # fmt: skip


@router.get("/referral/down", response_class=HTMLResponse)
def down_form(request: Request) -> Response:
    gate = let_in(request, _desk)
    if not isinstance(gate, Gate):
        return gate
    return _down_page(request, gate.principal, gate.fields)


@router.post("/referral/down", response_class=HTMLResponse)
async def refer_down(request: Request) -> Response:
    gate = await let_post(request, _desk, *DOWN_FIELDS)
    if not isinstance(gate, Gate):
        return gate
    principal, acting, values = gate.principal, gate.acting, gate.fields
    t = ReferralTranslator(language_of(request))
    data = DischargeInput(values["patient"].strip(), values["summary"], values["follow_up_plan"],
                          values["reason"].strip())  # fmt: skip
    if not data.reason:
        return _down_page(request, principal, values, error=t("ref.reason") + " (1-2000)",
                          status=400)  # fmt: skip
    try:
        with as_user(request, principal) as svc:
            made = service.refer_down(svc, acting, data, _now())
    except FhirError as exc:
        return _down_page(request, principal, values, error=_diagnostics(exc), status=exc.status)
    return RedirectResponse(f"/referral/mine?made={quote(made.task['id'])}", status_code=303)
