"""The web shell's pages: sign-in, each role's home page, the patient record, language switch.

Thin routes (STYLE.md §2): parse, authorise, call ``home``/``record``/``reads``, render. Pages
answer HTML, never an OperationOutcome: no session → 303 to ``/login``; a record the user may
not see → 403 page naming the rule, with break-glass offered to clinicians; bad form input →
the form again with the message naming the field.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from yilian.auth import Principal
from yilian.auth import service as auth_service
from yilian.auth.deps import SESSION_COOKIE, optional_principal
from yilian.auth.enforce import check_break_glass_reason
from yilian.auth.policy import may_read_patient
from yilian.db import unit_of_work
from yilian.fhir.errors import FhirError
from yilian.web import csrf, home
from yilian.web.i18n import LANGUAGE_COOKIE, LANGUAGES, choose_language, translator
from yilian.web.reads import as_user, resources_of, runtime_of
from yilian.web.record import CHARTS, MEASURES, build_record

PATIENT_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR id (datatypes.html#id)
MAX_PAGE = 100_000
MAX_FIELD = 200

router = APIRouter(include_in_schema=False)
_web_dir = resources.files("yilian.web")
templates = Jinja2Templates(directory=str(_web_dir.joinpath("templates")))


def install_web(app: FastAPI) -> None:
    """Mount the pages and their static files on the app."""
    app.mount("/static", StaticFiles(directory=str(_web_dir.joinpath("static"))), name="static")
    app.include_router(router)


# --------------------------------------------------------------------------- helpers


def language_of(request: Request) -> str:
    return choose_language(request.cookies.get(LANGUAGE_COOKIE))


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    principal: Principal | None = None,
) -> Response:
    language = language_of(request)
    values = {
        "t": translator(language),
        "lang": language,
        "languages": LANGUAGES,
        "principal": principal,
        "csrf_token": csrf.csrf_token(request),
        "path": request.url.path,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, values, status_code=status)
    csrf.keep_token(request, response, secure=_secure(request))
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def safe_next(value: str | None) -> str:
    """Only a local path is a redirect target (no ``//host`` or scheme: open-redirect rule)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value[:500]
    return "/"


def error_page(
    request: Request, principal: Principal | None, status: int, message: str
) -> Response:
    return render(
        request, "error.html", {"status": status, "message": message}, status=status,
        principal=principal,
    )  # fmt: skip


async def form_fields(request: Request, *names: str) -> dict[str, str]:
    form = await request.form()
    values: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        values[name] = value if isinstance(value, str) else ""
    return values


def parse_page(request: Request) -> int | None:
    text = request.query_params.get("page", "1")
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        return None
    return int(text)


# ----------------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse)
def home_route(request: Request) -> Response:
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    page = parse_page(request)
    t = translator(language_of(request))
    if page is None:
        return error_page(request, principal, 400, t("error.page_number", max=MAX_PAGE))
    try:
        built = home.home_page(request, principal, page=page, today=home.china_today(), t=t)
    except FhirError as exc:
        return error_page(request, principal, exc.status, _diagnostics(exc))
    return render(request, built.template, built.context, principal=principal)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return render(request, "login.html", {"next": safe_next(request.query_params.get("next"))})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    fields = await form_fields(request, "username", "password", csrf.CSRF_FIELD, "next")
    t = translator(language_of(request))
    target = safe_next(fields["next"])
    if not csrf.token_matches(request, fields[csrf.CSRF_FIELD]):
        return error_page(request, None, 403, t("error.csrf"))
    username, password = fields["username"].strip(), fields["password"]
    if not username or not password or len(username) > MAX_FIELD or len(password) > MAX_FIELD:
        context = {"next": target, "error": t("login.error_required", max=MAX_FIELD)}
        return render(request, "login.html", context | {"username": username}, status=400)
    runtime = runtime_of(request)
    with unit_of_work(runtime.sessions) as session:
        principal = auth_service.authenticate(session, username, password)
        cookie = auth_service.start_web_session(session, principal) if principal else None
    if cookie is None:
        context = {"next": target, "error": t("login.error_wrong"), "username": username}
        return render(request, "login.html", context, status=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, cookie, httponly=True, samesite="strict", secure=_secure(request),
        path="/", max_age=int(auth_service.SESSION_LIFETIME.total_seconds()),
    )  # fmt: skip
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    fields = await form_fields(request, csrf.CSRF_FIELD)
    if not csrf.token_matches(request, fields[csrf.CSRF_FIELD]):
        t = translator(language_of(request))
        return error_page(request, optional_principal(request), 403, t("error.csrf"))
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with unit_of_work(runtime_of(request).sessions) as session:
            auth_service.end_web_session(session, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language")
async def switch_language(request: Request) -> Response:
    fields = await form_fields(request, "lang", csrf.CSRF_FIELD, "next")
    t = translator(language_of(request))
    if not csrf.token_matches(request, fields[csrf.CSRF_FIELD]):
        return error_page(request, optional_principal(request), 403, t("error.csrf"))
    if fields["lang"] not in LANGUAGES:
        message = t("error.language", allowed=", ".join(LANGUAGES))
        return error_page(request, optional_principal(request), 400, message)
    response = RedirectResponse(safe_next(fields["next"]), status_code=303)
    response.set_cookie(
        LANGUAGE_COOKIE, fields["lang"], samesite="strict", secure=_secure(request), path="/",
        max_age=365 * 24 * 3600,
    )  # fmt: skip
    return response


# ---------------------------------------------------------------------------- record


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def record_page(request: Request, patient_id: str) -> Response:
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    t = translator(language_of(request))
    if not PATIENT_ID.fullmatch(patient_id):
        return error_page(request, principal, 400, t("error.patient_id"))
    with unit_of_work(runtime_of(request).sessions) as session:
        allowed = may_read_patient(session, principal, patient_id)
    if not allowed:
        return denied_page(request, principal, patient_id)
    return _record(request, principal, patient_id, None)


@router.post("/patients/{patient_id}/break-glass", response_class=HTMLResponse)
async def break_glass(request: Request, patient_id: str) -> Response:
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    t = translator(language_of(request))
    fields = await form_fields(request, "reason", csrf.CSRF_FIELD)
    if not csrf.token_matches(request, fields[csrf.CSRF_FIELD]):
        return error_page(request, principal, 403, t("error.csrf"))
    if not PATIENT_ID.fullmatch(patient_id):
        return error_page(request, principal, 400, t("error.patient_id"))
    if not principal.is_clinician:
        return error_page(request, principal, 403, t("record.break_glass_clinicians"))
    try:
        reason = check_break_glass_reason(fields["reason"])
    except FhirError:
        return denied_page(request, principal, patient_id, error=t("record.reason_rule"))
    return _record(request, principal, patient_id, reason)


def _record(
    request: Request, principal: Principal, patient_id: str, reason: str | None
) -> Response:
    t = translator(language_of(request))
    glass = (patient_id, reason) if reason else None
    try:
        with as_user(request, principal, break_glass=glass) as service:
            bundle = service.everything(patient_id)
    except FhirError as exc:
        if exc.status == 403:
            return denied_page(request, principal, patient_id)
        if exc.status in (404, 410):
            return error_page(request, principal, 404, t("error.no_patient", id=patient_id))
        return error_page(request, principal, exc.status, _diagnostics(exc))
    found = resources_of(bundle)
    patient = next(r for r in found if r.get("resourceType") == "Patient")
    record = build_record(patient, found, home.china_today())
    context = {
        "record": record,
        "charts": record.chart_data(),
        "chart_keys": CHARTS,
        "measures": MEASURES,
        "break_glass": reason,
    }
    return render(request, "record.html", context, principal=principal)


def denied_page(
    request: Request, principal: Principal, patient_id: str, *, error: str | None = None
) -> Response:
    """403: say why (the policy's reason, from a guarded read that also audits the denial)."""
    reason = ""
    try:
        with as_user(request, principal) as service:
            service.store.read("Patient", patient_id)
    except FhirError as exc:
        reason = _diagnostics(exc)
    context = {
        "patient_id": patient_id,
        "reason": reason,
        "may_break_glass": principal.is_clinician,
        "error": error,
    }
    return render(request, "denied.html", context, status=403, principal=principal)


def _diagnostics(exc: FhirError) -> str:
    outcome = exc.outcome()
    return "; ".join(str(i.get("diagnostics", "")) for i in outcome.get("issue", []))


__all__ = ["install_web", "router"]
