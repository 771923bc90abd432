"""Demo users of a generated district: one per role, linked to real records, each seeing its
share of the district through the API; ``yilian users`` administers them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.fhir.conftest import auth_header
from tests.synth.conftest import SMALL, generate
from yilian.app import create_app
from yilian.auth.demo import DEMO_FILE, choose, create_demo_users, read_choice, write_choice
from yilian.auth.service import AuthError, find_user, issue_token
from yilian.cli import app as cli
from yilian.db import session_factory, unit_of_work
from yilian.fhir.bulk.importer import Loader, LoadOptions
from yilian.fhir.runtime import RequestContext, Runtime

TINY = dataclasses.replace(SMALL, scale=0.0003, years=1)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-district")
    generate(TINY, out)
    write_choice(out)
    return out


def test_one_demo_user_per_role_linked_to_the_district(district: Path) -> None:
    users = {u.role: u for u in read_choice(district)}
    assert set(users) == {"family_doctor", "specialist", "cdc", "manager", "facility_admin",
                          "resident", "steward"}  # fmt: skip
    doctor, resident = users["family_doctor"], users["resident"]
    assert users["specialist"].organization_id == "tongren"
    assert users["facility_admin"].organization_id == doctor.organization_id
    # the resident is in the doctor's active panel
    episodes = [json.loads(line) for line in (district / "EpisodeOfCare.ndjson").open()]
    assert any(
        e["patient"]["reference"] == f"Patient/{resident.patient_id}"
        and e["careManager"]["reference"] == f"Practitioner/{doctor.practitioner_id}"
        and e["status"] == "active"
        for e in episodes
    )
    assert read_choice(district) == choose(district)  # the file holds the same choice


def test_demo_users_see_their_share(district: Path, engine: Engine) -> None:
    paths = sorted(p for p in district.glob("*.ndjson"))
    runtime = Runtime(engine, "http://testserver/fhir")
    Loader(runtime, RequestContext.system(), LoadOptions(workers=0)).load(paths)
    users = read_choice(district)
    factory = session_factory(engine)
    with unit_of_work(factory) as session:
        created = create_demo_users(session, users, password="demo-password-1")
        assert all(flag for _, flag in created)
        again = create_demo_users(session, users)
        assert not any(flag for _, flag in again)  # re-running keeps what exists
        tokens = {}
        for user in users:
            row = find_user(session, user.username)
            assert row is not None
            tokens[user.role] = issue_token(session, row).value
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    with TestClient(app, raise_server_exceptions=False) as http:

        def total(role: str, query: str) -> int:
            response = http.get(f"/fhir/{query}", headers=auth_header(tokens[role]))
            assert response.status_code == 200, response.text
            return int(response.json()["total"])

        resident = next(u for u in users if u.role == "resident")
        panel = total("family_doctor", "Patient?_summary=count")
        assert panel >= 1
        assert total("family_doctor", f"Patient?_id={resident.patient_id}") == 1
        assert total("specialist", "Patient?_summary=count") >= 1
        assert total("resident", "Patient?_summary=count") == 1
        assert total("cdc", "Patient?_summary=count") == 0
        patients = len((district / "Patient.ndjson").read_text(encoding="utf-8").splitlines())
        assert total("steward", "Patient?_summary=count") == patients  # every registration
        assert total("manager", "Organization?_summary=count") > 10
        everyone = int(
            http.get(
                "/fhir/Patient?_summary=count", headers=auth_header(tokens["family_doctor"])
            ).json()["total"]
        )
        assert everyone < 208  # a panel, not the district


def test_missing_records_are_named(district: Path, engine: Engine) -> None:
    with unit_of_work(session_factory(engine)) as session, pytest.raises(AuthError) as raised:
        create_demo_users(session, read_choice(district))
    assert "demo-links" in str(raised.value) and "yilian load" in str(raised.value)


def test_users_cli(engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("YILIAN_DATABASE_URL", url)
    runner = CliRunner()
    result = runner.invoke(cli, ["users", "create", "mgr", "--role", "manager"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["users", "create", "x", "--role", "boss"])
    assert result.exit_code == 1 and "[rule: role]" in result.output
    result = runner.invoke(
        cli, ["users", "create", "fd", "--role", "family_doctor", "--practitioner", "d1"]
    )
    assert result.exit_code == 1 and "--organization" in result.output
    result = runner.invoke(cli, ["users", "token", "mgr", "--scope", "user/Patient.write"])
    assert result.exit_code == 1 and "scope-within-role" in result.output
    result = runner.invoke(cli, ["users", "token", "mgr", "--days", "3"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    with TestClient(app) as http:
        assert http.get("/fhir/Organization", headers=auth_header(token)).status_code == 200
    listed = runner.invoke(cli, ["users", "list", "--json"])
    assert {json.loads(line)["username"] for line in listed.stdout.splitlines()} == {"mgr"}
    assert DEMO_FILE == "demo-users.json"


def test_a_demo_file_from_before_the_steward_role_gains_the_steward(tmp_path: Path) -> None:
    old = [{"username": "manager", "role": "manager", "display_name": "区卫健委 管理"}]
    (tmp_path / DEMO_FILE).write_text(json.dumps(old), encoding="utf-8")
    assert [u.username for u in read_choice(tmp_path)] == ["manager", "steward"]
