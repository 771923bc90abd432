"""SMART App Launch v1 clinical scopes: ``context/Type.access``, parsed and checked.

Grammar (http://hl7.org/fhir/smart-app-launch/1.0.0/scopes-and-launch-context.html):
``(patient|user|system)/(<ResourceType>|*).(read|write|*)``. ``patient/`` limits the token to
the records of the user's own patient, ``user/`` to what the user may see, ``system/`` is for
back-end services (only the admin role may hold it here). Scopes only ever narrow the role's
rules in ``yilian.auth.policy``; they never widen them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from yilian.auth.principal import Role
from yilian.fhir.searchparams.registry import resource_types

_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.(read|write|\*)$")
MAX_SCOPES = 50


class ScopeError(ValueError):
    """A scope string that breaks a rule; ``rule`` names it for the error message."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(f"{message} [rule: {rule}]")
        self.rule = rule


@dataclass(frozen=True)
class Scope:
    context: str  # patient | user | system
    resource_type: str  # a FHIR type or "*"
    access: str  # read | write | *

    def __str__(self) -> str:
        return f"{self.context}/{self.resource_type}.{self.access}"

    def covers(self, other: Scope) -> bool:
        """Whether holding ``self`` implies ``other`` (same context, wider type and access)."""
        return (
            self.context == other.context
            and self.resource_type in ("*", other.resource_type)
            and self.access in ("*", other.access)
        )

    def permits(self, access: str, resource_type: str) -> bool:
        return self.resource_type in ("*", resource_type) and self.access in ("*", access)


# Each role's scopes when a token asks for none, and the widest any of its tokens may hold.
ROLE_SCOPES: dict[Role, tuple[str, ...]] = {
    Role.ADMIN: ("system/*.*", "user/*.*"),
    Role.FAMILY_DOCTOR: ("user/*.*",),
    Role.SPECIALIST: ("user/*.*",),
    Role.CDC: ("user/*.read",),
    Role.MANAGER: ("user/*.read",),
    Role.FACILITY_ADMIN: ("user/*.*",),
    Role.RESIDENT: ("patient/*.read",),
    Role.STEWARD: ("user/Patient.*",),  # registrations only: no clinical record
}


@cache
def parse_scope(text: str) -> Scope:
    """One scope string, or ``ScopeError`` naming the rule it breaks (cached: every request
    checks its token's few scopes many times)."""
    match = _SCOPE.fullmatch(text)
    if match is None:
        raise ScopeError(
            f"scope {text!r} is not of the form (patient|user|system)/(Type|*).(read|write|*)",
            "smart-v1-scope-syntax",
        )
    context, res_type, access = match.groups()
    if res_type != "*" and res_type not in resource_types():
        raise ScopeError(
            f"scope {text!r} names {res_type!r}, which is not a FHIR R4 resource type",
            "scope-resource-type",
        )
    return Scope(context, res_type, access)


def parse_scopes(texts: Iterable[str]) -> frozenset[Scope]:
    """Scopes from strings (each may hold several separated by spaces, as OAuth writes them)."""
    items = [part for text in texts for part in text.split()]
    if len(items) > MAX_SCOPES:
        raise ScopeError(f"at most {MAX_SCOPES} scopes per token", "scope-count")
    return frozenset(parse_scope(item) for item in items)


def role_scopes(role: Role) -> frozenset[Scope]:
    return frozenset(parse_scope(s) for s in ROLE_SCOPES[role])


def check_scopes_for_role(role: Role, requested: Iterable[str]) -> frozenset[str]:
    """The token's scopes: the role's defaults when none are asked for, else the asked ones —
    each of which must be covered by the role's scopes (a token never widens its role)."""
    wanted = parse_scopes(requested)
    allowed = role_scopes(role)
    if not wanted:
        return frozenset(str(s) for s in allowed)
    for scope in sorted(wanted, key=str):
        if not any(a.covers(scope) for a in allowed):
            raise ScopeError(
                f"scope {scope} is wider than role {role.value} may hold "
                f"({' '.join(ROLE_SCOPES[role])})",
                "scope-within-role",
            )
    return frozenset(str(s) for s in wanted)


def scopes_permit(scopes: Iterable[str], access: str, resource_type: str) -> bool:
    """Whether any held scope allows ``access`` (read|write) on ``resource_type``."""
    return any(parse_scope(s).permits(access, resource_type) for s in scopes)


def has_system_scope(scopes: Iterable[str], access: str) -> bool:
    """Whether a ``system/*`` scope allows ``access`` on every type (bulk data needs it)."""
    return any(
        (s := parse_scope(text)).context == "system"
        and s.permits(access, "*")
        and s.resource_type == "*"
        for text in scopes
    )
