"""The referral pages: the family doctor's refer-and-book, his facility's referrals, the desk queue.

They follow the web shell (yilian.web): server-rendered, zh-CN by default, CSRF on every form,
no session → sign-in, every read and write through the store as the signed-in user
(``yilian.web.reads.as_user``, so the access policy and the audit chain apply). The referral
strings live in ``referral/messages`` and extend the shell's catalogue; templates extend its
``base.html``. The logic is the referral service's, as for the API.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from yilian.auth import Principal, Role
from yilian.auth.deps import optional_principal
from yilian.fhir import systems
from yilian.fhir.errors import FhirError
from yilian.fhir.service import FhirService
from yilian.referral import resources as rs
from yilian.referral import service, stats
from yilian.referral.queue import CONTRACTED, queue_page
from yilian.referral.service import Acting, ReferralInput
from yilian.referral.workflow import TRANSITIONS
from yilian.web import csrf
from yilian.web.i18n import LANGUAGES, Translator
from yilian.web.reads import as_user, resources_of
from yilian.web.routes import error_page, form_fields, language_of, safe_next, to_login

router = APIRouter(include_in_schema=False)
FHIR_ID = r"[A-Za-z0-9\-.]{1,64}"
HOSPITAL_TIERS = ("district-regional", "municipal")
QUEUE_PAGE = 50  # referrals per page of the desk's queue
_env = Environment(
    loader=ChoiceLoader([
        FileSystemLoader(str(resources.files("yilian.referral").joinpath("templates"))),
        FileSystemLoader(str(resources.files("yilian.web").joinpath("templates"))),
    ]),
    autoescape=select_autoescape(["html"]),
)  # fmt: skip
templates = Jinja2Templates(env=_env)


@cache
def _messages(language: str) -> dict[str, str]:
    text = resources.files("yilian.referral").joinpath("messages", f"{language}.json")
    messages: dict[str, str] = json.loads(text.read_text("utf-8"))
    return messages


class ReferralTranslator(Translator):
    """The shell's catalogue plus the referral pages' strings."""

    def __init__(self, language: str) -> None:
        super().__init__(language)
        self.messages = {**self.messages, **_messages(language)}


def render(request: Request, template: str, context: dict[str, Any], principal: Principal,
           *, status: int = 200) -> Response:  # fmt: skip
    language = language_of(request)
    values = {
        "t": ReferralTranslator(language), "lang": language, "languages": LANGUAGES,
        "principal": principal, "csrf_token": csrf.csrf_token(request),
        "path": request.url.path, **context,
    }  # fmt: skip
    response = templates.TemplateResponse(request, template, values, status_code=status)
    csrf.keep_token(request, response, secure=request.url.scheme == "https")
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _diagnostics(exc: FhirError) -> str:
    return "; ".join(str(i.get("diagnostics", "")) for i in exc.outcome().get("issue", []))


def _acting(principal: Principal) -> Acting | None:
    if principal.organization_id is None:
        return None
    return Acting(principal.organization_id, principal.practitioner_id)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _local(value: Any) -> str:
    moment = rs.parse_instant(value)
    return moment.astimezone(rs.CHINA_TIME).strftime("%Y-%m-%d %H:%M") if moment else "—"


# ------------------------------------------------------------------ refer and book


def _panel(svc: FhirService, practitioner: str | None) -> list[dict[str, str]]:
    if practitioner is None:
        return []
    bundle = svc.search(
        "EpisodeOfCare",
        [("care-manager", f"Practitioner/{practitioner}"), ("status", "active"),
         ("_include", "EpisodeOfCare:patient"), ("_count", "200")],
    )  # fmt: skip
    patients = resources_of(bundle, "Patient")
    out = []
    for p in patients:
        name = p.get("name", [{}])[0]
        text = name.get("text") or (name.get("family", "") + "".join(name.get("given", [])))
        out.append({"id": p["id"], "label": f"{text or p['id']} ({p['id']})"})
    return sorted(out, key=lambda p: p["label"])


def _hospitals(svc: FhirService) -> list[dict[str, str]]:
    bundle = svc.search(
        "Organization",
        [("type", f"{systems.ORGANIZATION_TIER}|{t}") for t in HOSPITAL_TIERS[:1]]
        + [("_count", "200")],
    )
    bundle2 = svc.search(
        "Organization", [("type", f"{systems.ORGANIZATION_TIER}|municipal"), ("_count", "200")]
    )
    found = resources_of(bundle, "Organization") + resources_of(bundle2, "Organization")
    return [{"id": o["id"], "name": str(o.get("name", o["id"]))} for o in found]


def _slots(svc: FhirService, target: str) -> list[dict[str, Any]]:
    """The hospital's next free reserved slots, each marked when it is inside its department's
    urgent window (china-rules.md §8: those are for urgent referrals only)."""
    schedules = [
        s for s in resources_of(svc.search("Schedule", [("active", "true"), ("_count", "500")]))
        if rs.ref_id(rs.extension(s, systems.EXT_SCHEDULE_ORGANIZATION), "Organization") == target
    ]  # fmt: skip
    if not schedules:
        return []
    now = _now()
    bundle = svc.search(
        "Slot",
        [("schedule", ",".join(f"Schedule/{s['id']}" for s in schedules)),
         ("_tag", f"{systems.SLOT_CHANNEL}|{rs.COMMUNITY_REFERRAL}"), ("status", "free"),
         ("start", f"ge{rs.instant(now)}"), ("_sort", "start"), ("_count", "120")],
    )  # fmt: skip
    windows: dict[str, dt.timedelta] = {}
    out = []
    for slot in resources_of(bundle, "Slot"):
        schedule = rs.ref_id(slot.get("schedule"), "Schedule") or ""
        if schedule not in windows:
            windows[schedule] = service.urgent_window(svc, schedule, target)
        start = rs.parse_instant(slot["start"])
        department = rs.code_of(slot.get("specialty", []), systems.DEPARTMENT) or "—"
        out.append({"id": slot["id"], "when": _local(slot["start"]), "department": department,
                    "urgent_only": bool(start and start - now < windows[schedule])})  # fmt: skip
    return out


@router.get("/referral/new", response_class=HTMLResponse)
def new_referral(request: Request) -> Response:
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    return _new_page(request, principal, dict(request.query_params))


def _new_page(request: Request, principal: Principal, fields: dict[str, str], *,
              error: str | None = None, status: int = 200) -> Response:  # fmt: skip
    t = ReferralTranslator(language_of(request))
    if principal.role not in (Role.FAMILY_DOCTOR, Role.ADMIN) or _acting(principal) is None:
        return error_page(request, principal, 403, t("denied.title"))
    with as_user(request, principal) as svc:
        patients = _panel(svc, principal.practitioner_id)
        hospitals = _hospitals(svc)
        target = fields.get("target") or ""
        if target and target not in {h["id"] for h in hospitals}:
            target, error = "", error or t("ref.hospital") + ": " + fields.get("target", "")
        slots = _slots(svc, target) if target else []
    context = {"patients": patients, "hospitals": hospitals, "patient": fields.get("patient"),
               "target": target, "slots": slots, "error": error,
               "reason": fields.get("reason")}  # fmt: skip
    return render(request, "referral_new.html", context, principal, status=status)


@router.post("/referral/new", response_class=HTMLResponse)
async def refer_and_book(request: Request) -> Response:
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    fields = await form_fields(request, "patient", "target", "slot", "priority", "reason",
                              csrf.CSRF_FIELD)  # fmt: skip
    t = ReferralTranslator(language_of(request))
    if not csrf.token_matches(request, fields[csrf.CSRF_FIELD]):
        return error_page(request, principal, 403, t("error.csrf"))
    acting = _acting(principal)
    if principal.role is not Role.FAMILY_DOCTOR or acting is None:
        return error_page(request, principal, 403, t("denied.title"))
    reason = fields["reason"].strip()
    if not reason or len(reason) > 2000:
        return _new_page(request, principal, fields, error=t("ref.reason") + " (1-2000)",
                         status=400)  # fmt: skip
    data = ReferralInput(
        fields["patient"], fields["target"], reason, fields["priority"] or "routine"
    )
    try:
        with as_user(request, principal) as svc:
            made = service.refer_and_book(svc, acting, data, fields["slot"], _now())
    except FhirError as exc:
        return _new_page(request, principal, fields, error=_diagnostics(exc), status=exc.status)
    return RedirectResponse(f"/referral/mine?made={quote(made.task['id'])}", status_code=303)


# ------------------------------------------------------------------- lists and queue


def _rows(svc: FhirService, tasks: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    rows = []
    for task in tasks:
        due = rs.parse_instant((task.get("restriction") or {}).get("period", {}).get("end"))
        followed = rs.code_of(task.get("businessStatus", {}), systems.REFERRAL_ACTION)
        open_ = task.get("status") not in ("completed", "cancelled", "rejected", "failed")
        rows.append({
            "id": task["id"],
            "patient": rs.ref_id(task.get("for"), "Patient") or "—",
            "direction": rs.tag_of(task, systems.REFERRAL_DIRECTION) or "up",
            "priority": task.get("priority"),
            "target": rs.ref_id(task.get("owner"), "Organization") or "—",
            "status": task.get("status"),
            "authored": _local(task.get("authoredOn")),
            "deadline": _local(due.isoformat()) if due else "—",
            "overdue": bool(due and due < now and open_ and followed != "follow-up"),
            "contracted": rs.tag_of(task, systems.REFERRAL_PRIORITY_GROUP) == CONTRACTED,
        })  # fmt: skip
    return rows


@router.get("/referral/mine", response_class=HTMLResponse)
def my_referrals(request: Request) -> Response:
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    t = ReferralTranslator(language_of(request))
    acting = _acting(principal)
    if acting is None or not principal.is_clinician:
        return error_page(request, principal, 403, t("denied.title"))
    now = _now()
    with as_user(request, principal) as svc:
        made = svc.search("Task", [("requester", f"Organization/{acting.organization}"),
                                   ("_sort", "-authored-on"), ("_count", "100")])  # fmt: skip
        incoming = service.queue(svc, acting.organization)
        sections = [
            {"id": "incoming", "title": t("ref.incoming"), "actions": True,
             "rows": _rows(svc, incoming, now)},
            {"id": "made", "title": t("ref.mine"), "actions": False,
             "rows": _rows(svc, resources_of(made, "Task"), now)},
        ]  # fmt: skip
    message = t("ref.made") if request.query_params.get("made") else None
    context = {"title": t("ref.mine"), "intro": None, "sections": sections, "message": message}
    return render(request, "referral_list.html", context, principal)


@router.get("/referral/queue", response_class=HTMLResponse)
def desk_queue(request: Request) -> Response:
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    t = ReferralTranslator(language_of(request))
    acting = _acting(principal)
    if acting is None or not principal.is_clinician:
        return error_page(request, principal, 403, t("denied.title"))
    number = request.query_params.get("page", "1")
    if not (number.isdigit() and int(number) >= 1):
        return error_page(request, principal, 400, t("ref.page_bad"))
    offset = (int(number) - 1) * QUEUE_PAGE
    with as_user(request, principal) as svc:
        found = queue_page(svc, acting.organization, limit=QUEUE_PAGE, offset=offset)
        rows = _rows(svc, found.tasks, _now())
    done = request.query_params.get("done")
    message = t("ref.action_done", action=done) if done in TRANSITIONS else None
    paging = _paging(t, int(number), found.offset, len(rows), found.total)
    sections = [{"id": "queue", "title": t("ref.queue"), "actions": True, "rows": rows,
                 "paging": paging}]  # fmt: skip
    context = {"title": t("ref.queue"), "intro": t("ref.queue_intro"), "sections": sections,
               "message": message}  # fmt: skip
    return render(request, "referral_list.html", context, principal)


def _paging(
    t: ReferralTranslator, number: int, offset: int, shown: int, total: int
) -> dict[str, Any]:
    """The queue's position line and previous/next links (``?page=N``, 1-based)."""
    return {
        "text": t("ref.page", first=offset + 1 if shown else 0, last=offset + shown, total=total),
        "previous": f"/referral/queue?page={number - 1}" if number > 1 else None,
        "next": f"/referral/queue?page={number + 1}" if offset + shown < total else None,
    }


@router.post("/referral/tasks/{task_id}/{action}", response_class=HTMLResponse)
async def task_action(request: Request, task_id: str, action: str) -> Response:
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    fields = await form_fields(request, "reason", "next", csrf.CSRF_FIELD)
    t = ReferralTranslator(language_of(request))
    if not csrf.token_matches(request, fields[csrf.CSRF_FIELD]):
        return error_page(request, principal, 403, t("error.csrf"))
    acting = _acting(principal)
    if acting is None or not principal.is_clinician or action not in ("accept", "decline"):
        return error_page(request, principal, 403, t("denied.title"))
    try:
        with as_user(request, principal) as svc:
            service.act(svc, acting, task_id, action, _now(),
                        reason=fields["reason"].strip() or None)  # fmt: skip
    except FhirError as exc:
        return error_page(request, principal, exc.status, _diagnostics(exc))
    target = safe_next(fields["next"])
    return RedirectResponse(f"{target}?done={action}", status_code=303)


@router.get("/referral/stats", response_class=HTMLResponse)
def manager_figures(request: Request) -> Response:
    """The manager's referral figures (aggregates only, as ``/api/referral/stats``)."""
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    if principal.role not in (Role.MANAGER, Role.ADMIN):
        t = ReferralTranslator(language_of(request))
        return error_page(request, principal, 403, t("denied.title"))
    with as_user(request, principal) as svc:
        figures = stats.summary(svc)
    return render(request, "referral_stats.html", {"s": figures}, principal)


def _where(appointment: dict[str, Any]) -> str:
    for participant in appointment.get("participant", []):
        actor = participant.get("actor", {})
        if str(actor.get("reference", "")).startswith("Location/"):
            return str(actor.get("display") or actor["reference"])
    return "—"


@router.get("/referral/me", response_class=HTMLResponse)
def resident_view(request: Request) -> Response:
    """The resident's own contract, referrals and appointments (read as himself)."""
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    if principal.role is not Role.RESIDENT or principal.patient_id is None:
        t = ReferralTranslator(language_of(request))
        return error_page(request, principal, 403, t("denied.title"))
    me = f"Patient/{principal.patient_id}"
    with as_user(request, principal) as svc:
        teams = resources_of(svc.search("CareTeam", [("patient", me), ("status", "active")]))
        tasks = resources_of(svc.search("Task", [("patient", me), ("_sort", "-authored-on")]))
        booked = resources_of(svc.search("Appointment", [("patient", me), ("_sort", "-date")]))
        told = resources_of(svc.search("Communication", [("recipient", me), ("_sort", "-sent")]))
    contract = [
        (p.get("role", [{}])[0].get("coding", [{}])[0].get("display", ""),
         p.get("member", {}).get("display") or p.get("member", {}).get("reference", ""))
        for team in teams for p in team.get("participant", [])
    ]  # fmt: skip
    appointments = [
        {"when": _local(a.get("start")), "status": a.get("status"), "where": _where(a)}
        for a in booked
    ]
    referrals = [r for r in _rows(svc, tasks, _now()) if r["direction"] in ("up", "down")]
    notices = [
        {"when": _local(c.get("sent")), "text": c.get("payload", [{}])[0].get("contentString", "")}
        for c in told
    ]  # where and when to go (referral.communication)
    context = {"contract": contract, "appointments": appointments, "referrals": referrals,
               "notices": notices}  # fmt: skip
    return render(request, "referral_me.html", context, principal)
