"""FastAPI dependencies: who is asking, from ``Authorization: Bearer …`` or the web session.

The principal is resolved once per request and kept on ``request.state.principal``; a request
with a credential that does not resolve (unknown, expired, revoked) is treated like one without,
so ``require_principal`` answers 401 and the denial is audited.
"""

from __future__ import annotations

from fastapi import Request

from yilian.auth.principal import Principal
from yilian.auth.service import principal_for_secret
from yilian.db import unit_of_work

SESSION_COOKIE = "yilian_session"
_UNSET = object()


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def optional_principal(request: Request) -> Principal | None:
    """The authenticated principal, or None. A bearer token wins over the session cookie."""
    cached = getattr(request.state, "principal", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    principal: Principal | None = None
    token = bearer_token(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if token is not None or cookie:
        runtime = request.app.state.runtime
        with unit_of_work(runtime.sessions) as session:
            if token is not None:
                principal = principal_for_secret(session, token, kind="token")
            elif cookie:
                principal = principal_for_secret(session, cookie, kind="session")
    request.state.principal = principal
    return principal


def require_principal(request: Request) -> Principal:
    """The authenticated principal; 401 OperationOutcome (audited) when there is none."""
    principal = optional_principal(request)
    if principal is None:
        from yilian.auth.enforce import unauthenticated  # enforce builds on this module

        raise unauthenticated(request)
    return principal
