"""FastAPI dependencies: who is asking, from ``Authorization: Bearer …`` or the web session.

The principal is resolved once per request and kept on ``request.state.principal``; a request
with a credential that does not resolve (unknown, expired, revoked) is treated like one without,
so ``require_principal`` answers 401 and the denial is audited.
"""

from __future__ import annotations

import time

from fastapi import Request

from yilian.auth.principal import Principal
from yilian.auth.service import principal_for_secret, secret_hash
from yilian.db import unit_of_work

SESSION_COOKIE = "yilian_session"
_UNSET = object()
# Bearer tokens verified a moment ago, by their hash: a client booking hundreds of slots a second
# sends one token each time, and each lookup cost a pooled connection and a transaction of its
# own (~1/5 of a booking's wall time, bench/referral_booking_profile.py). A token revoked or
# expired, or a user disabled, is refused again at most TOKEN_CACHE_SECONDS later in every server
# process (ADR 0013). Web-session cookies are not cached: signing out takes effect at once.
TOKEN_CACHE_SECONDS = 2.0
TOKEN_CACHE_SIZE = 1000
_verified: dict[str, tuple[float, Principal]] = {}


def _token_principal(runtime: object, token: str) -> Principal | None:
    key, now = secret_hash(token), time.monotonic()
    hit = _verified.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    with unit_of_work(runtime.sessions) as session:  # type: ignore[attr-defined]
        principal = principal_for_secret(session, token, kind="token")
    if principal is None:
        _verified.pop(key, None)
        return None
    if len(_verified) >= TOKEN_CACHE_SIZE:  # requests run on several threads: copy, then drop
        entries = list(_verified.items())
        for stale in [k for k, (until, _) in entries if until <= now] or [k for k, _ in entries]:
            _verified.pop(stale, None)
    _verified[key] = (now + TOKEN_CACHE_SECONDS, principal)
    return principal


def forget_verified_tokens() -> None:
    """Drop the cache (tests that revoke a token and expect the next request refused)."""
    _verified.clear()


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
    runtime = request.app.state.runtime
    if token is not None:
        principal = _token_principal(runtime, token)
    elif cookie:
        with unit_of_work(runtime.sessions) as session:
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
