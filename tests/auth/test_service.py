"""Users, passwords, tokens, sessions and scope strings (yilian.auth.service and .scopes)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from tests.auth.conftest import Clients
from yilian.auth import Role, deps
from yilian.auth.deps import forget_verified_tokens
from yilian.auth.models import CredentialRow
from yilian.auth.passwords import PasswordError
from yilian.auth.scopes import ScopeError, check_scopes_for_role, parse_scope
from yilian.auth.service import (
    AuthError,
    authenticate,
    create_user,
    end_web_session,
    ensure_initial_admin,
    find_user,
    issue_token,
    principal_for_secret,
    start_web_session,
    utc_now,
)
from yilian.db import session_factory, unit_of_work


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("patient/*.delete", "smart-v1-scope-syntax"),
        ("user/Observation", "smart-v1-scope-syntax"),
        ("admin/*.*", "smart-v1-scope-syntax"),
        ("user/Foo.read", "scope-resource-type"),
    ],
)
def test_bad_scope_strings_name_the_rule(text: str, rule: str) -> None:
    with pytest.raises(ScopeError) as raised:
        parse_scope(text)
    assert raised.value.rule == rule and f"[rule: {rule}]" in str(raised.value)


def test_a_token_never_widens_its_role() -> None:
    assert check_scopes_for_role(Role.RESIDENT, []) == {"patient/*.read"}
    assert check_scopes_for_role(Role.FAMILY_DOCTOR, ["user/Observation.read"]) == {
        "user/Observation.read"
    }
    with pytest.raises(ScopeError, match="scope-within-role"):
        check_scopes_for_role(Role.RESIDENT, ["user/*.read"])
    with pytest.raises(ScopeError, match="scope-within-role"):
        check_scopes_for_role(Role.CDC, ["user/Patient.write"])
    with pytest.raises(ScopeError, match="scope-within-role"):
        check_scopes_for_role(Role.FAMILY_DOCTOR, ["system/*.*"])


def test_user_input_is_validated(engine: Engine) -> None:
    with unit_of_work(session_factory(engine)) as session:
        with pytest.raises(AuthError, match="username-format"):
            create_user(session, "Bad Name", Role.ADMIN)
        with pytest.raises(AuthError, match="role-links"):
            create_user(session, "doc", Role.FAMILY_DOCTOR, practitioner_id="d1")
        with pytest.raises(AuthError, match="id-format"):
            create_user(session, "res", Role.RESIDENT, patient_id="bad id")
        with pytest.raises(PasswordError, match="password-length"):
            create_user(session, "short", Role.MANAGER, password="1234")
        create_user(session, "dup", Role.MANAGER)
        with pytest.raises(AuthError, match="username-unique"):
            create_user(session, "dup", Role.MANAGER)
        user = find_user(session, "dup")
        assert user is not None
        with pytest.raises(AuthError, match="token-lifetime"):
            issue_token(session, user, days=0)


def test_passwords_sessions_and_the_initial_admin(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YILIAN_ADMIN_PASSWORD", "a-long-admin-password")
    with unit_of_work(session_factory(engine)) as session:
        assert ensure_initial_admin(session) is None  # from the environment: nothing to print
        assert ensure_initial_admin(session) is None  # and only once
        assert authenticate(session, "admin", "wrong-password") is None
        assert authenticate(session, "nobody", "a-long-admin-password") is None
        principal = authenticate(session, "admin", "a-long-admin-password")
        assert principal is not None and principal.role is Role.ADMIN
        cookie = start_web_session(session, principal)
        assert principal_for_secret(session, cookie, kind="session") == principal
        assert principal_for_secret(session, cookie, kind="token") is None  # kinds do not mix
        end_web_session(session, cookie)
        assert principal_for_secret(session, cookie, kind="session") is None


def test_expired_tokens_are_refused(clients: Clients, engine: Engine) -> None:
    doctor = clients["doctor"]
    assert doctor.get("/fhir/Patient/p1").status_code == 200
    with unit_of_work(session_factory(engine)) as session:
        session.execute(update(CredentialRow).values(expires=utc_now() - timedelta(seconds=1)))
    forget_verified_tokens()  # as TOKEN_CACHE_SECONDS later
    r = doctor.get("/fhir/Patient/p1")
    assert r.status_code == 401 and "[rule: authentication]" in r.json()["issue"][0]["diagnostics"]


def test_revoked_tokens_are_refused_within_the_cache_time(
    clients: Clients, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verified token is remembered for TOKEN_CACHE_SECONDS, never longer (ADR 0013)."""
    clock = [1000.0]
    monkeypatch.setattr(deps.time, "monotonic", lambda: clock[0])
    doctor = clients["doctor"]
    assert doctor.get("/fhir/Patient/p1").status_code == 200
    with unit_of_work(session_factory(engine)) as session:
        session.execute(update(CredentialRow).values(revoked=True))
    clock[0] += deps.TOKEN_CACHE_SECONDS / 2
    assert doctor.get("/fhir/Patient/p1").status_code == 200  # still within the cache time
    clock[0] += deps.TOKEN_CACHE_SECONDS / 2
    assert doctor.get("/fhir/Patient/p1").status_code == 401
    assert clients["specialist"].get("/fhir/Patient/p1").status_code == 401  # not cached before


def test_a_narrow_scope_narrows_access(clients: Clients, engine: Engine) -> None:
    with unit_of_work(session_factory(engine)) as session:
        user = find_user(session, "doctor")
        assert user is not None
        token = issue_token(session, user, scopes=["user/Patient.read"]).value
    http: TestClient = clients.http
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get("/fhir/Patient/p1", headers=headers).status_code == 200
    r = http.get("/fhir/Observation/obs-p1", headers=headers)
    assert r.status_code == 403 and "[rule: scope]" in r.json()["issue"][0]["diagnostics"]
    assert http.get("/fhir/Observation", headers=headers).json()["total"] == 0


def test_one_token_used_concurrently(clients: Clients) -> None:
    doctor = clients["doctor"]

    def read(n: int) -> int:
        target = "p1" if n % 2 else "p2"
        return int(doctor.get(f"/fhir/Patient/{target}").status_code)

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(read, range(16)))
    assert codes == [403 if n % 2 == 0 else 200 for n in range(16)]


def test_the_token_cache_stays_bounded(clients: Clients, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deps, "TOKEN_CACHE_SIZE", 2)
    forget_verified_tokens()
    for name in ("doctor", "specialist", "resident", "doctor"):
        assert clients[name].get("/fhir/Patient/p1").status_code in (200, 403)
        assert len(deps._verified) <= 2
