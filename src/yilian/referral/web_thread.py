"""A referral's own page: what was asked, its booking, and its messages (FHIR Communication,
``referral.communication``) with a form to send the other facility a note. Read and written as
the signed-in clinician, so the access policy decides who sees it; a clinician of neither
facility cannot write (``communication.other_party``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from yilian.auth import Principal
from yilian.fhir import systems
from yilian.fhir.errors import FhirError
from yilian.fhir.service import FhirService
from yilian.referral import communication
from yilian.referral import resources as rs
from yilian.referral.web import _diagnostics, _local, _now, _where, render
from yilian.referral.web_forms import Gate, let_in, let_post
from yilian.web.reads import as_user, resources_of
from yilian.web.routes import error_page

router = APIRouter(include_in_schema=False)


def _clinician(principal: Principal) -> bool:
    return principal.is_clinician


def _who(reference: Any) -> str:
    if not isinstance(reference, dict):
        return "—"
    return str(reference.get("display") or reference.get("reference") or "—")


def _context(svc: FhirService, task_id: str) -> dict[str, Any]:
    task = svc.store.read("Task", task_id)
    request = svc.store.read("ServiceRequest", str(rs.ref_id(task.get("focus"), "ServiceRequest")))
    booked = resources_of(
        svc.search("Appointment", [("based-on", f"ServiceRequest/{request['id']}")])
    )
    messages = [
        {"sent": _local(c.get("sent")),
         "kind": rs.code_of(c.get("category", []), systems.REFERRAL_MESSAGE),
         "sender": _who(c.get("sender")),
         "recipient": ", ".join(_who(r) for r in c.get("recipient", [])),
         "text": c.get("payload", [{}])[0].get("contentString", "")}
        for c in communication.thread(svc, request["id"])
    ]  # fmt: skip
    return {
        "task_id": task_id,
        "direction": rs.tag_of(task, systems.REFERRAL_DIRECTION) or "up",
        "patient": rs.ref_id(task.get("for"), "Patient") or "—",
        "source": rs.ref_id(task.get("requester"), "Organization") or "—",
        "target": rs.ref_id(task.get("owner"), "Organization") or "—",
        "priority": task.get("priority"), "status": task.get("status"),
        "reason": (request.get("reasonCode") or [{}])[0].get("text", ""),
        "appointments": [{"when": _local(a.get("start")), "where": _where(a),
                          "status": a.get("status")} for a in booked],
        "messages": messages,
    }  # fmt: skip


@router.get("/referral/tasks/{task_id}", response_class=HTMLResponse)
def referral_page(request: Request, task_id: str) -> Response:
    gate = let_in(request, _clinician)
    if not isinstance(gate, Gate):
        return gate
    try:
        with as_user(request, gate.principal) as svc:
            context = _context(svc, task_id)
    except FhirError as exc:
        return error_page(request, gate.principal, exc.status, _diagnostics(exc))
    if request.query_params.get("sent"):
        context["message"] = "✓"
    return render(request, "referral_task.html", context, gate.principal)


@router.post("/referral/messages/{task_id}", response_class=HTMLResponse)
async def send_note(request: Request, task_id: str) -> Response:
    gate = await let_post(request, _clinician, "text")
    if not isinstance(gate, Gate):
        return gate
    try:
        with as_user(request, gate.principal) as svc:
            task = svc.store.read("Task", task_id)
            communication.note(svc, task, gate.fields["text"],
                               organization=gate.acting.organization,
                               practitioner=gate.acting.practitioner, now=_now())  # fmt: skip
    except FhirError as exc:
        return error_page(request, gate.principal, exc.status, _diagnostics(exc))
    return RedirectResponse(f"/referral/tasks/{task_id}?sent=1", status_code=303)
