"""Cross-site request forgery protection for the web forms.

Two layers: the session cookie is ``SameSite=Strict`` (a browser never sends it with a request
started by another site), and every form carries a token that must equal the ``yilian_csrf``
cookie (double-submit: another site can neither read that cookie nor set the form field to it).
The login form is protected the same way, so a forged login cannot plant a session either.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

CSRF_COOKIE = "yilian_csrf"
CSRF_FIELD = "csrf_token"


def csrf_token(request: Request) -> str:
    """The token for this browser's forms: its cookie, or a fresh one (set by ``keep_token``)."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(existing) <= 100:
        return existing
    token: str = getattr(request.state, "new_csrf", "") or secrets.token_urlsafe(32)
    request.state.new_csrf = token
    return token


def keep_token(request: Request, response: Response, *, secure: bool) -> None:
    """Set the cookie when ``csrf_token`` minted a new token for this response."""
    token = getattr(request.state, "new_csrf", "")
    if token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/"
        )


def token_matches(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and bool(submitted) and hmac.compare_digest(cookie, submitted or "")
