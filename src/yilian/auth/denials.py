"""Denials decided before a request reaches the store (401, bulk, break-glass refusals) go to
the audit chain here, each in its own small transaction."""

from __future__ import annotations

import re

from fastapi import Request

from yilian.auth.principal import Principal
from yilian.db import unit_of_work
from yilian.fhir.auditing import AuditBuffer
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.fhir.store import Access

_RESOURCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")  # Type/id, as the chain wants
DENIED_OUTCOME = 8  # AuditEvent.outcome "serious failure": the action was refused

# The audit event a refused HTTP method stands for (yilian.audit.codes.AuditEventKind).
EVENT_OF_METHOD = {"GET": "read", "HEAD": "read", "POST": "create", "PUT": "update",
                   "DELETE": "delete", "PATCH": "patch"}  # fmt: skip


def audit_request_denial(
    request: Request, principal: Principal | None, rule: str, message: str
) -> None:
    """Record one refused request: who (or ``anonymous``), what path, which rule."""
    runtime: Runtime = request.app.state.runtime
    try:
        ctx = RequestContext.from_request(
            request, actor=principal.actor if principal else "anonymous"
        )
    except Exception:  # a bad X-Purpose-Of-Use must not keep the denial out of the chain
        ctx = RequestContext(
            actor=principal.actor if principal else "anonymous",
            purpose="TREAT",
            source=request.client.host if request.client else "unknown",
            request_id="",
        )
    if principal is not None:
        ctx = RequestContext(
            ctx.actor, ctx.purpose, ctx.source, ctx.request_id, role=principal.role.value
        )
    path = request.url.path
    event = "operation" if "$" in path else EVENT_OF_METHOD.get(request.method, "read")
    target = path.removeprefix("/fhir").strip("/")
    resources = (target,) if _RESOURCE.fullmatch(target) else ()
    query = f"{request.method} {path}" + (f"?{request.url.query}" if request.url.query else "")
    access = Access(
        event,
        resources,
        (f"Patient/{target.split('/')[1]}",) if target.startswith("Patient/") and resources else (),
        outcome=DENIED_OUTCOME,
        outcome_desc=message if "[rule:" in message else f"{message} [rule: {rule}]",
        query=query,
    )
    with unit_of_work(runtime.sessions) as session:
        buffer = AuditBuffer(ctx.as_actor())
        buffer.pending = [access]
        buffer.flush(session)
