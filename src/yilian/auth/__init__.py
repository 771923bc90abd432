"""Who may see what: users, roles, SMART-style scopes, tokens, web sessions and the access policy.

The public interface other modules build on (docs/authorization.md):

- ``Role`` and ``Principal`` (this module) — who is asking;
- ``yilian.auth.deps`` — FastAPI dependencies ``optional_principal`` / ``require_principal``;
- ``yilian.auth.service`` — users, passwords, bearer tokens, web sessions;
- ``yilian.auth.policy`` — the rules (``may_read_patient`` and the rest), one place.
"""

from __future__ import annotations

from yilian.auth.principal import Principal, Role

__all__ = ["Principal", "Role"]
