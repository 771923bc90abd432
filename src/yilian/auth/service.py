"""Users, passwords, bearer tokens and web sessions — the only code that writes the auth tables.

Callers pass their own session and commit (one unit of work per request or command). A bearer
token and a session cookie are both 256-bit random secrets (``secrets.token_urlsafe(32)``) shown
once and stored only as their SHA-256; each carries its own expiry and scopes.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from yilian.auth.models import CredentialRow, UserRow
from yilian.auth.passwords import hash_password, verify_password
from yilian.auth.principal import Principal, Role
from yilian.auth.scopes import ROLE_SCOPES, check_scopes_for_role

USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # http://hl7.org/fhir/R4/datatypes.html#id
TOKEN_DAYS_DEFAULT = 30
TOKEN_DAYS_MAX = 365
SESSION_LIFETIME = timedelta(hours=12)  # one working day; the web asks to sign in again after
INITIAL_ADMIN = "admin"
ADMIN_PASSWORD_ENV = "YILIAN_ADMIN_PASSWORD"

# Which record links each role needs (docs/authorization.md): a family doctor or specialist is a
# Practitioner at an organisation, a facility administrator belongs to one, a resident is a
# Patient.
REQUIRED_LINKS: dict[Role, tuple[str, ...]] = {
    Role.ADMIN: (),
    Role.FAMILY_DOCTOR: ("practitioner_id", "organization_id"),
    Role.SPECIALIST: ("practitioner_id", "organization_id"),
    Role.CDC: (),
    Role.MANAGER: (),
    Role.FACILITY_ADMIN: ("organization_id",),
    Role.RESIDENT: ("patient_id",),
    Role.STEWARD: (),
}


class AuthError(ValueError):
    """Bad input to the user service; the message names the field and the rule."""


@dataclass(frozen=True)
class IssuedSecret:
    """A token or cookie value, shown once; ``expires`` in naive UTC."""

    value: str
    expires: datetime
    scopes: frozenset[str]


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def secret_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise AuthError(f"role {text!r} is not one of {names} [rule: role]") from None


def _principal(user: UserRow, scopes: Iterable[str]) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        scopes=frozenset(scopes),
        practitioner_id=user.practitioner_id,
        patient_id=user.patient_id,
        organization_id=user.organization_id,
    )


def principal_of(user: UserRow) -> Principal:
    """The principal of a user signed in with a password: the role's full scopes."""
    return _principal(user, ROLE_SCOPES[Role(user.role)])


# ----------------------------------------------------------------------------- users


def find_user(session: Session, username: str) -> UserRow | None:
    return session.execute(select(UserRow).where(UserRow.username == username)).scalar_one_or_none()


def list_users(session: Session) -> list[UserRow]:
    return list(session.execute(select(UserRow).order_by(UserRow.username)).scalars())


def create_user(
    session: Session,
    username: str,
    role: Role,
    *,
    display_name: str | None = None,
    password: str | None = None,
    practitioner_id: str | None = None,
    patient_id: str | None = None,
    organization_id: str | None = None,
) -> UserRow:
    """A new user; every input is checked and named in the error when it breaks a rule.

    A user without a password can only act through bearer tokens (API clients, tests).
    """
    if not USERNAME.fullmatch(username):
        raise AuthError(
            f"username {username!r} must be 2-64 characters: lower-case letters, digits, '.', "
            "'_' or '-', starting with a letter [rule: username-format]"
        )
    if find_user(session, username) is not None:
        raise AuthError(f"user {username!r} already exists [rule: username-unique]")
    links = {
        "practitioner_id": practitioner_id,
        "patient_id": patient_id,
        "organization_id": organization_id,
    }
    for name, value in links.items():
        if value is not None and not FHIR_ID.fullmatch(value):
            raise AuthError(f"{name} {value!r} is not a FHIR id [rule: id-format]")
    for name in REQUIRED_LINKS[role]:
        if links[name] is None:
            option = "--" + name.removesuffix("_id").replace("_", "-")
            raise AuthError(
                f"role {role.value} needs {option} (the {name.removesuffix('_id')} the user "
                f"acts for) [rule: role-links]"
            )
    name = (display_name or username).strip()
    if not name or len(name) > 200:
        raise AuthError("display name must have 1-200 characters [rule: display-name]")
    user = UserRow(
        username=username,
        display_name=name,
        role=role.value,
        password_hash=hash_password(password) if password is not None else None,
        active=True,
        created=utc_now(),
        **links,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: UserRow, password: str) -> None:
    user.password_hash = hash_password(password)
    session.flush()


def authenticate(session: Session, username: str, password: str) -> Principal | None:
    """The principal for a correct username and password, else None (never says which was
    wrong). A hash is computed even for unknown users so timing does not reveal who exists."""
    user = find_user(session, username)
    if user is None or user.password_hash is None or not user.active:
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, user.password_hash):
        return None
    return principal_of(user)


# A fixed hash to spend the same time on when the user does not exist (scrypt of a random text).
_DUMMY_HASH = (
    "scrypt$131072$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)


# ------------------------------------------------------------------------- credentials


def _issue(
    session: Session, user: UserRow, kind: str, scopes: frozenset[str], lifetime: timedelta
) -> IssuedSecret:
    value = secrets.token_urlsafe(32)
    now = utc_now()
    row = CredentialRow(
        secret_hash=secret_hash(value),
        user_id=user.id,
        kind=kind,
        scopes=" ".join(sorted(scopes)),
        created=now,
        expires=now + lifetime,
        revoked=False,
    )
    session.add(row)
    session.flush()
    return IssuedSecret(value, row.expires, scopes)


def issue_token(
    session: Session,
    user: UserRow,
    *,
    scopes: Iterable[str] = (),
    days: int = TOKEN_DAYS_DEFAULT,
) -> IssuedSecret:
    """A bearer token; ``scopes`` empty = the role's scopes; each must lie within the role."""
    if not 1 <= days <= TOKEN_DAYS_MAX:
        raise AuthError(f"--days must be 1-{TOKEN_DAYS_MAX} [rule: token-lifetime]")
    if not user.active:
        raise AuthError(f"user {user.username!r} is disabled [rule: user-active]")
    granted = check_scopes_for_role(Role(user.role), scopes)
    return _issue(session, user, "token", granted, timedelta(days=days))


def principal_for_secret(
    session: Session, value: str, *, kind: str, now: datetime | None = None
) -> Principal | None:
    """The principal a live (unexpired, unrevoked, active user) token or cookie stands for."""
    if not value or len(value) > 200:
        return None
    found = session.execute(
        select(CredentialRow, UserRow)
        .join(UserRow, UserRow.id == CredentialRow.user_id)
        .where(CredentialRow.secret_hash == secret_hash(value), CredentialRow.kind == kind)
    ).one_or_none()
    if found is None:
        return None
    credential, user = found
    if credential.revoked or credential.expires <= (now or utc_now()) or not user.active:
        return None
    return _principal(user, credential.scopes.split())


def revoke_tokens(session: Session, user: UserRow) -> int:
    result = session.execute(
        update(CredentialRow).where(CredentialRow.user_id == user.id).values(revoked=True)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def start_web_session(session: Session, principal: Principal) -> str:
    """A new web session for a signed-in principal; returns the ``yilian_session`` cookie value."""
    user = session.get(UserRow, principal.user_id)
    if user is None or not user.active:
        raise AuthError(f"user {principal.username!r} cannot sign in [rule: user-active]")
    return _issue(session, user, "session", principal.scopes, SESSION_LIFETIME).value


def end_web_session(session: Session, cookie_value: str) -> None:
    """Sign out: the cookie's session is revoked (unknown values are ignored)."""
    session.execute(
        update(CredentialRow)
        .where(
            CredentialRow.secret_hash == secret_hash(cookie_value),
            CredentialRow.kind == "session",
        )
        .values(revoked=True)
    )


# ------------------------------------------------------------------------- set-up


def ensure_initial_admin(session: Session) -> str | None:
    """Create the system administrator ``admin`` when there are no users at all.

    The password is ``$YILIAN_ADMIN_PASSWORD`` when set, else a random one that is returned so
    the caller can print it once (it is not stored anywhere in clear). Returns None when users
    already exist or the password came from the environment.
    """
    if session.execute(select(func.count()).select_from(UserRow)).scalar_one() > 0:
        return None
    given = os.environ.get(ADMIN_PASSWORD_ENV)
    password = given or secrets.token_urlsafe(12)
    create_user(
        session,
        INITIAL_ADMIN,
        Role.ADMIN,
        display_name="系统管理员 System administrator",
        password=password,
    )
    return None if given else password
