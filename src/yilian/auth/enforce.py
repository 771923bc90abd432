"""Enforcement of ``yilian.auth.policy`` on the FHIR API: one ``RequestGuard`` per request.

The guard answers the store's and search engine's questions (``yilian.fhir.access``), raises a
403 OperationOutcome naming the rule on a refusal, and keeps each refusal so the runtime can
append it to the audit chain after the request's transaction ends (a refused request rolls back,
its denial must still be recorded). Break-glass (``X-Break-Glass: <reason>``) widens one
clinician request to one patient, read only, recorded with purpose of use BTG.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import Request
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from yilian.auth import policy
from yilian.auth.denials import DENIED_OUTCOME, audit_request_denial
from yilian.auth.deps import require_principal
from yilian.auth.principal import Principal
from yilian.fhir.compartment import patients_of
from yilian.fhir.errors import FhirError, Issue
from yilian.fhir.runtime import RequestContext
from yilian.fhir.store import Access

log = logging.getLogger(__name__)

BREAK_GLASS_HEADER = "x-break-glass"
BREAK_GLASS_PURPOSE = "BTG"  # v3-ActReason "break the glass"
_REASON = re.compile(r"^[^\x00-\x1f\x7f]{10,500}$")


def forbidden(rule: str, message: str) -> FhirError:
    return FhirError(403, [Issue(message, code="forbidden", rule=rule)])


def unauthenticated_error() -> FhirError:
    return FhirError(
        401,
        [
            Issue(
                "authentication required: send 'Authorization: Bearer <token>' (yilian users "
                "token NAME) or sign in on the web",
                code="login",
                rule="authentication",
            )
        ],
    )


def unauthenticated(request: Request) -> FhirError:
    """The 401 for a request without a valid credential, recorded in the audit chain."""
    error = unauthenticated_error()
    audit_request_denial(request, None, "authentication", str(error))
    return error


def check_break_glass_reason(value: str) -> str:
    reason = value.strip()
    if not _REASON.fullmatch(reason):
        raise FhirError(
            400,
            [
                Issue(
                    "X-Break-Glass needs a reason of 10-500 printable characters, e.g. "
                    "'X-Break-Glass: unconscious patient in the emergency room'",
                    expression="X-Break-Glass",
                    rule="break-glass-reason",
                )
            ],
        )
    return reason


@dataclass
class RequestGuard:
    """The access guard of one request (``yilian.fhir.access.AccessGuard``)."""

    principal: Principal
    break_glass_patient: str | None = None  # the one patient break-glass opens
    denials: list[Access] = field(default_factory=list)
    _session: Session | None = field(default=None, repr=False)
    _visible: tuple[str | None, list[str] | None] | None = field(default=None, repr=False)

    @property
    def owner(self) -> str:
        return self.principal.actor

    @property
    def _extra(self) -> str | None:
        return self.break_glass_patient if self.principal.break_glass else None

    def _refuse(
        self,
        decision: policy.Decision,
        resources: tuple[str, ...],
        patients: tuple[str, ...],
        event: str,
        query: str | None = None,
    ) -> FhirError:
        message = f"{decision.reason} [rule: {decision.rule}]"
        self.denials.append(
            Access(
                event,
                resources,
                patients,
                outcome=DENIED_OUTCOME,
                outcome_desc=message,
                query=query,
            )
        )
        return forbidden(decision.rule, decision.reason)

    def check_read(self, session: Session, resource: dict[str, Any]) -> None:
        if self.principal.break_glass and self.break_glass_patient is None:
            found = patients_of(resource)
            if len(found) == 1:  # a single-patient resource read by id binds break-glass to it
                self.break_glass_patient = found[0].split("/", 1)[1]
        decision = policy.read_decision(session, self.principal, resource, extra=self._extra)
        if not decision:
            ref = f"{resource.get('resourceType')}/{resource.get('id')}"
            raise self._refuse(decision, (ref,), tuple(patients_of(resource)), "read")
        if decision.rule == "break-glass":
            log.warning(
                "break-glass: %s read %s/%s: %s",
                self.principal.actor,
                resource.get("resourceType"),
                resource.get("id"),
                self.principal.break_glass,
            )

    def check_write(
        self,
        session: Session,
        res_type: str,
        new: dict[str, Any] | None,
        old: dict[str, Any] | None,
    ) -> None:
        decision = policy.write_decision(session, self.principal, res_type, new, old)
        if not decision:
            target = new if new is not None else old
            res_id = (target or {}).get("id")
            refs = (f"{res_type}/{res_id}",) if isinstance(res_id, str) and res_id else ()
            patients = tuple(sorted({p for r in (new, old) if r for p in patients_of(r)}))
            event = "delete" if new is None else ("update" if old is not None else "create")
            raise self._refuse(decision, refs, patients, event)

    def check_history_across(self, res_type: str | None) -> None:
        decision = policy.may_history_across(self.principal, res_type)
        if not decision:
            raise self._refuse(decision, (), (), "history", query=f"{res_type or ''}/_history")

    def search_clause(
        self, resource: Any, types: Collection[str] | None = None
    ) -> ColumnElement[bool] | None:
        if self.principal.break_glass and self.break_glass_patient is None:
            raise FhirError(
                400,
                [
                    Issue(
                        "a break-glass search must name one patient: patient=, subject= or "
                        "(for Patient) _id=",
                        expression="X-Break-Glass",
                        rule="break-glass-one-patient",
                    )
                ],
            )
        return policy.search_clause(
            self.principal,
            resource,
            extra=self._extra,
            ids_list=self._visible_list(),
            types=types,
        )

    def bind(self, session: Session) -> None:
        """The request's session: visible patients are then fetched once and inlined."""
        self._session = session
        self._visible = None

    def _visible_list(self) -> list[str] | None:
        if self._session is None:
            return None
        cached = self._visible
        if not (isinstance(cached, tuple) and cached[0] == self._extra):  # break-glass may bind
            ids = policy.visible_ids(self._session, self.principal, extra=self._extra)
            cached = self._visible = (self._extra, ids)
        found: list[str] | None = cached[1]
        return found

    def take_denials(self) -> list[Access]:
        taken, self.denials = self.denials, []
        return taken


def _patient_of_request(request: Request) -> str | None:
    """The one patient a break-glass request names: ``Patient/{id}…`` in the path, or a single
    ``patient``/``subject`` (or, on Patient, ``_id``) search parameter."""
    path = request.path_params
    if path.get("res_type", "Patient") == "Patient" and path.get("res_id"):
        return str(path["res_id"])
    values: list[str] = []
    for key, value in request.query_params.multi_items():
        base = key.split(":", 1)[0]
        if base in ("patient", "subject") or (
            base == "_id" and request.url.path.rstrip("/").endswith("/Patient")
        ):
            values.extend(v.strip() for v in value.split(","))
    ids = {v.removeprefix("Patient/") for v in values if v}
    return ids.pop() if len(ids) == 1 else None


def request_context(request: Request) -> RequestContext:
    """The context of an authenticated FHIR request: actor, purpose and the access guard.

    401 (audited) without a valid credential. With ``X-Break-Glass: <reason>`` a clinician's
    request is recorded with purpose of use BTG and the reason, and may read one patient.
    """
    principal = require_principal(request)
    ctx = RequestContext.from_request(request, actor=principal.actor)
    header = request.headers.get(BREAK_GLASS_HEADER)
    if header is None:
        return replace(ctx, role=principal.role.value, guard=RequestGuard(principal))
    reason = check_break_glass_reason(header)
    if not principal.is_clinician:
        message = "break-glass is for clinicians (family doctors and specialists)"
        audit_request_denial(request, principal, "break-glass-clinicians", message)
        raise forbidden("break-glass-clinicians", message)
    reading = request.method == "GET" or request.url.path.endswith(("/_search", "$everything"))
    if not reading:
        message = "break-glass grants read access only"
        audit_request_denial(request, principal, "break-glass-read-only", message)
        raise forbidden("break-glass-read-only", message)
    opened = principal.with_break_glass(reason)
    log.warning("break-glass by %s on %s: %s", principal.actor, request.url.path, reason)
    return replace(
        ctx,
        purpose=BREAK_GLASS_PURPOSE,
        role=principal.role.value,
        guard=RequestGuard(opened, break_glass_patient=_patient_of_request(request)),
        note=f"break-glass: {reason}",
    )


def bulk_access(request: Request) -> None:
    """Router dependency of Bulk Data (``$export``, ``$import``, job status and files): every
    record at once, so admin with a ``system/*`` scope only (read for GET, write otherwise)."""
    principal = require_principal(request)
    access = "read" if request.method in ("GET", "HEAD") else "write"
    decision = policy.may_bulk(principal, access)
    if not decision:
        audit_request_denial(request, principal, decision.rule, decision.reason)
        raise forbidden(decision.rule, decision.reason)
