"""The data steward's pages: the review queue, the side-by-side comparison, the decisions.

They follow the web shell (yilian.web, docs/web.md): server-rendered, zh-CN by default, CSRF on
every form, no session → sign-in. The queue lists pair ids, probabilities and ages only; names
and identifiers appear on the comparison page, read through the store as the signed-in steward
(policy-checked, audited with purpose of use RECORDMGT). Decisions are the same functions as the
FHIR ``$mpi-decide`` operation (``yilian.mpi.review.api``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from yilian.auth import Principal, Role
from yilian.auth.deps import optional_principal
from yilian.fhir.errors import FhirError
from yilian.mpi.review.decisions import ACTIONS, decide, decisions_of, undo
from yilian.mpi.review.queue import ReviewError, count_items, get_item, list_items
from yilian.mpi.review.view import comparison_rows, display_name
from yilian.web import csrf
from yilian.web.i18n import translator
from yilian.web.reads import as_user, runtime_of
from yilian.web.routes import error_page, form_fields, language_of, render, to_login

router = APIRouter(include_in_schema=False)
STEWARDS = (Role.STEWARD, Role.ADMIN)
PAGE_SIZE = 25
MAX_PAGE = 10_000
ORDERS = ("probability", "age")
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))


def _local(moment: dt.datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.replace(tzinfo=dt.UTC).astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")


def queue_context(session: Session, *, order: str, page: int) -> dict[str, Any]:
    """The queue page's context (also the steward's home page)."""
    total = count_items(session)
    items = list_items(
        session, order="age" if order == "age" else "probability",
        limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
    )  # fmt: skip
    rows = [
        {
            "id": item.id,
            "a": item.patient_a,
            "b": item.patient_b,
            "probability": item.probability,
            "source": item.source,
            "created": _local(item.created),
            "agree": sum(1 for c in item.comparisons if float(c["weight"]) > 0),
            "disagree": sum(1 for c in item.comparisons if float(c["weight"]) < 0),
        }
        for item in items
    ]
    decided = {s: count_items(session, status=s) for s in ("linked", "not-linked", "merged")}
    return {
        "rows": rows, "total": total, "order": order, "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)), "decided": decided,
    }  # fmt: skip


def _steward(request: Request) -> Principal | Response:
    """The signed-in steward (or admin), else the response that turns the request away."""
    principal = optional_principal(request)
    if principal is None:
        return to_login(request)
    if principal.role not in STEWARDS:
        t = translator(language_of(request))
        return error_page(request, principal, 403, t("mpi.denied"))
    return principal


@router.get("/mpi/review", response_class=HTMLResponse)
def queue_page(request: Request) -> Response:
    principal = _steward(request)
    if isinstance(principal, Response):
        return principal
    order = request.query_params.get("order", "probability")
    text = request.query_params.get("page", "1")
    if order not in ORDERS or not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        t = translator(language_of(request))
        return error_page(request, principal, 400, t("mpi.bad_query", max=MAX_PAGE))
    with runtime_of(request).sessions() as session:
        context = queue_context(session, order=order, page=int(text))
    return render(request, "mpi_review_queue.html", context, principal=principal)


def _item_page(
    request: Request, principal: Principal, item_id: int, *, message: str | None = None,
    error: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    t = translator(language_of(request))
    try:
        with as_user(request, principal) as svc:
            item = get_item(svc.session, item_id)
            left = svc.store.read("Patient", item.patient_a)
            right = svc.store.read("Patient", item.patient_b)
            log = decisions_of(svc.session, item_id)
            following = [i.id for i in list_items(svc.session, limit=2) if i.id != item_id]
    except ReviewError:
        return error_page(request, principal, 404, t("mpi.no_item", id=item_id))
    except FhirError as exc:
        return error_page(request, principal, exc.status, _diagnostics(exc))
    context = {
        "item": item, "created": _local(item.created),
        "names": (display_name(left), display_name(right)),
        "rows": comparison_rows(item.comparisons, left, right),
        "log": [{"action": d.action, "actor": d.actor, "at": _local(d.at), "undone": d.undone}
                for d in log],
        "message": message, "error": error, "next_item": following[0] if following else None,
    }  # fmt: skip
    return render(request, "mpi_review_item.html", context, status=status, principal=principal)


@router.get("/mpi/review/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: int) -> Response:
    principal = _steward(request)
    if isinstance(principal, Response):
        return principal
    done = request.query_params.get("done")
    t = translator(language_of(request))
    message = t("mpi.done." + done) if done in (*ACTIONS, "undo") else None
    return _item_page(request, principal, item_id, message=message)


def _diagnostics(exc: FhirError) -> str:
    return "; ".join(str(i.get("diagnostics", "")) for i in exc.outcome().get("issue", []))


@router.post("/mpi/review/{item_id}", response_class=HTMLResponse)
async def decide_page(request: Request, item_id: int) -> Response:
    principal = _steward(request)
    if isinstance(principal, Response):
        return principal
    fields = await form_fields(request, "action", "survivor", csrf.CSRF_FIELD)
    if not csrf.token_matches(request, fields[csrf.CSRF_FIELD]):
        t = translator(language_of(request))
        return error_page(request, principal, 403, t("error.csrf"))
    action = fields["action"]
    try:
        with as_user(request, principal) as svc:
            if action == "undo":
                undo(svc, item_id, principal.actor)
            else:
                decide(svc, item_id, action, principal.actor, survivor=fields["survivor"] or None)
    except FhirError as exc:
        return _item_page(request, principal, item_id, error=_diagnostics(exc), status=exc.status)
    return RedirectResponse(f"/mpi/review/{item_id}?done={action}", status_code=303)
