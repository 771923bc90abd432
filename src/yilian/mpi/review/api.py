"""The review queue over HTTP: ``/api/mpi/review`` (JSON) and FHIR ``Patient/$merge``.

``/api/mpi/review`` lists items, shows one with its decision log, records a decision and undoes
the decision in force — the functions the steward's pages call. ``POST /fhir/Patient/$merge`` is
yilian's take on the R5 operation (http://hl7.org/fhir/R5/patient-operation-merge.html): input
parameters ``source-patient`` and ``target-patient`` (references), the source is marked
``replaced-by`` the target and made inactive; yilian merges only pairs its matcher proposed (the
review item carries the evidence and the undo), and does not rewrite references elsewhere.
All routes need the steward or admin role; errors are OperationOutcomes naming the rule.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response

from yilian.auth.deps import require_principal
from yilian.auth.principal import Principal, Role
from yilian.fhir.api import ContextDep, RuntimeDep, fhir_response
from yilian.fhir.errors import FhirError, Issue, invalid, not_found
from yilian.jsonutil import dumps
from yilian.mpi.review.decisions import decide, decisions_of, undo
from yilian.mpi.review.models import ReviewRow
from yilian.mpi.review.queue import Order, ReviewError, find_pair, get_item, list_items

router = APIRouter(prefix="/api/mpi/review", tags=["Patient matching review (主索引)"])
fhir_router = APIRouter(prefix="/fhir", tags=["Patient matching review (主索引)"])
PrincipalDep = Annotated[Principal, Depends(require_principal)]
STEWARDS = (Role.STEWARD, Role.ADMIN)


def _steward(principal: Principal) -> None:
    if principal.role not in STEWARDS:
        raise FhirError(
            403,
            [Issue(f"role {principal.role.value} may not review patient matches; allowed: "
                   "steward, admin", code="forbidden", rule="mpi-steward")],
        )  # fmt: skip


def _json(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json")


def item_json(item: ReviewRow) -> dict[str, Any]:
    return {
        "id": item.id,
        "patients": [f"Patient/{item.patient_a}", f"Patient/{item.patient_b}"],
        "probability": item.probability,
        "matchWeight": item.match_weight,
        "comparisons": item.comparisons,
        "source": item.source,
        "status": item.status,
        "created": item.created.isoformat() + "Z",
        "decidedBy": item.decided_by,
        "decidedAt": item.decided_at.isoformat() + "Z" if item.decided_at else None,
    }


def _bad_query(exc: ReviewError) -> FhirError:
    return invalid(str(exc), expression=exc.field, rule=exc.rule)


@router.get("")
def queue(
    runtime: RuntimeDep,
    user: PrincipalDep,
    status: str = Query("open"),
    patient: str | None = Query(None, description="only pairs with this Patient id"),
    order: str = Query("probability"),
    count: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> Response:
    _steward(user)
    with runtime.sessions() as session:
        try:
            items = list_items(
                session, status=status, patient=patient, order=cast(Order, order),
                limit=count, offset=offset,
            )  # fmt: skip
        except ReviewError as exc:
            raise _bad_query(exc) from None
        return _json({"items": [item_json(i) for i in items]})


@router.get("/{item_id}")
def item(item_id: int, runtime: RuntimeDep, user: PrincipalDep) -> Response:
    _steward(user)
    with runtime.sessions() as session:
        try:
            found = get_item(session, item_id)
        except ReviewError as exc:
            raise not_found(str(exc)) from None
        log = [
            {"action": d.action, "actor": d.actor, "at": d.at.isoformat() + "Z",
             "changes": d.changes, "undone": d.undone}
            for d in decisions_of(session, item_id)
        ]  # fmt: skip
        return _json({**item_json(found), "decisions": log})


@router.post("/{item_id}/decision")
def decision(
    item_id: int,
    runtime: RuntimeDep,
    ctx: ContextDep,
    user: PrincipalDep,
    body: Annotated[dict[str, Any], Body()],
) -> Response:
    """Body ``{"action": "link" | "not-link" | "merge", "survivor": "<Patient id>"}``."""
    _steward(user)
    action, survivor = body.get("action"), body.get("survivor")
    if not isinstance(action, str) or not (survivor is None or isinstance(survivor, str)):
        raise invalid(
            "the body must be {\"action\": text, \"survivor\": text (merge only)}",
            expression="action", rule="mpi-decision",
        )  # fmt: skip
    with runtime.transaction(ctx) as service:
        done = decide(service, item_id, action, user.actor, survivor=survivor)
        return _json(item_json(done))


@router.post("/{item_id}/undo")
def undo_decision(
    item_id: int, runtime: RuntimeDep, ctx: ContextDep, user: PrincipalDep
) -> Response:
    _steward(user)
    with runtime.transaction(ctx) as service:
        return _json(item_json(undo(service, item_id, user.actor)))


def _reference(parameters: dict[str, Any], name: str) -> str:
    for parameter in parameters.get("parameter") or []:
        if isinstance(parameter, dict) and parameter.get("name") == name:
            reference = (parameter.get("valueReference") or {}).get("reference")
            if isinstance(reference, str) and reference.startswith("Patient/"):
                return reference.removeprefix("Patient/")
    raise invalid(
        f"Parameters.parameter {name} must be a valueReference to a Patient",
        expression=f"Parameters.parameter:{name}", rule="merge-parameters",
    )  # fmt: skip


@fhir_router.post("/Patient/$merge")
def merge(
    runtime: RuntimeDep,
    ctx: ContextDep,
    user: PrincipalDep,
    parameters: Annotated[dict[str, Any], Body()],
) -> Response:
    _steward(user)
    if parameters.get("resourceType") != "Parameters":
        raise invalid("the body must be a Parameters resource", rule="merge-parameters")
    source, target = (
        _reference(parameters, "source-patient"),
        _reference(parameters, "target-patient"),
    )
    with runtime.transaction(ctx) as service:
        try:
            found = find_pair(service.session, source, target)
        except ReviewError as exc:
            raise _bad_query(exc) from None
        if found is None:
            raise invalid(
                f"Patient/{source} and Patient/{target} were never proposed as a pair; yilian "
                "merges pairs from the review queue only",
                expression="Parameters.parameter:source-patient", rule="merge-proposed-pair",
            )  # fmt: skip
        decide(service, found.id, "merge", user.actor, survivor=target)
        result = service.store.read("Patient", target, audit=False)
    said = (
        f"Patient/{source} merged into Patient/{target} (review item {found.id}; undo: "
        f"POST /api/mpi/review/{found.id}/undo)"
    )
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": said}],
    }
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "input", "resource": parameters},
            {"name": "outcome", "resource": outcome},
            {"name": "result", "resource": result},
        ],
    }
    return fhir_response(body)
