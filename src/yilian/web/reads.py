"""Personal data for the pages, read through the FHIR store's service as the signed-in user.

Every read here goes through ``Runtime.transaction`` with the user's ``RequestGuard``
(``yilian.auth.enforce``): the store applies the access policy and appends each access to the
audit chain, exactly as for an API client. Break-glass widens one request to one patient with
purpose of use BTG and the reason recorded (docs/authorization.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request

from yilian.auth import Principal, Role
from yilian.auth.enforce import BREAK_GLASS_PURPOSE, RequestGuard
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.fhir.service import FhirService

# Purpose of use recorded with a page's reads (HL7 v3 ActReason).
PURPOSE = {
    Role.RESIDENT: "PATRQT",
    Role.CDC: "PUBHLTH",
    Role.MANAGER: "HOPERAT",
    Role.STEWARD: "RECORDMGT",  # records management: the steward reconciles registrations
}


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@contextmanager
def as_user(
    request: Request, principal: Principal, *, break_glass: tuple[str, str] | None = None
) -> Iterator[FhirService]:
    """A FhirService acting for ``principal``; ``break_glass`` = (patient id, reason)."""
    acting, patient, note = principal, None, None
    if break_glass is not None:
        patient, note = break_glass
        acting = principal.with_break_glass(note)
    ctx = RequestContext(
        actor=principal.actor,
        purpose=BREAK_GLASS_PURPOSE if note else PURPOSE.get(principal.role, "TREAT"),
        source=request.client.host if request.client else "unknown",
        request_id=str(uuid.uuid4()),
        role=principal.role.value,
        guard=RequestGuard(acting, break_glass_patient=patient),
        note=note,
    )
    with runtime_of(request).transaction(ctx) as service:
        yield service


def resources_of(bundle: dict[str, Any], res_type: str | None = None) -> list[dict[str, Any]]:
    """The resources of a searchset (matches and includes), optionally of one type."""
    found = [e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
    return [r for r in found if res_type is None or r.get("resourceType") == res_type]
