"""The steward's pages and the review API over HTTP, on both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.fhir.conftest import auth_header, bearer_token
from tests.web.conftest import Browser
from yilian.app import create_app
from yilian.auth import Role
from yilian.auth.service import create_user
from yilian.db import session_factory, unit_of_work
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.mpi.review import ComparisonEvidence, enqueue_candidate

PASSWORD = "steward-password-1"
EVIDENCE = [
    ComparisonEvidence("surname", 2, "same pinyin or variant character", 5.1),
    ComparisonEvidence("given", 1, "same characters", 7.0),
    ComparisonEvidence("birth_date", 5, "different", -6.2),
    ComparisonEvidence("phone", 0, "missing", 0.0),
]


def _patient(pid: str, family: str, born: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family, "given": ["伟"]}],
            "gender": "male", "birthDate": born}  # fmt: skip


@pytest.fixture
def item(engine: Engine) -> int:
    ctx = RequestContext.system("system/test")
    with Runtime(engine, "http://testserver/fhir").transaction(ctx) as service:
        service.store.update("Patient", "pa", _patient("pa", "陈", "1970-01-02"))
        service.store.update("Patient", "pb", _patient("pb", "陳", "1971-03-04"))
        service.store.update("Patient", "pc", _patient("pc", "李", "1980-01-01"))
        row = enqueue_candidate(
            service.session, "pa", "pb", probability=0.73, match_weight=1.4,
            comparisons=EVIDENCE, source="batch",
        )  # fmt: skip
        enqueue_candidate(
            service.session, "pa", "pc", probability=0.08, match_weight=-3.5,
            comparisons=EVIDENCE[:1], source="realtime",
        )  # fmt: skip
        return row.id


@pytest.fixture
def steward(engine: Engine) -> Iterator[Browser]:
    with unit_of_work(session_factory(engine)) as session:
        create_user(session, "steward", Role.STEWARD, password=PASSWORD)
        create_user(session, "doctor", Role.MANAGER, password=PASSWORD)
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    browser = Browser(app)
    with browser.http:
        assert browser.login("steward", PASSWORD).status_code == 303
        yield browser


def test_steward_works_an_item_from_the_queue(steward: Browser, item: int) -> None:
    home = steward.get("/").text
    assert 'id="review-queue"' in home and 'id="nav-mpi-review"' in home
    rows = re.findall(r'data-item="(\d+)"', steward.get("/mpi/review").text)
    assert rows[0] == str(item) and len(rows) == 2  # most likely first
    assert re.findall(r'data-item="(\d+)"', steward.get("/mpi/review?order=age").text)[0] == rows[0]
    page = steward.get(f"/mpi/review/{item}").text
    verdicts = dict(re.findall(r'data-field="([a-z_]+)" data-verdict="([a-z]+)"', page))
    assert verdicts["surname"] == "agree" and verdicts["birth_date"] == "disagree"
    assert verdicts["phone"] == "missing" and verdicts["links"] == "info"
    assert "陳" in page and "-6.20" in page
    assert re.search(r'id="next-item"', page) and f'href="/mpi/review/{rows[1]}"' in page
    done = steward.post_form(f"/mpi/review/{item}", {"action": "merge", "survivor": "pa"},
                             page=f"/mpi/review/{item}")  # fmt: skip
    assert done.status_code == 303
    page = steward.get(done.headers["location"]).text
    assert 'id="action-undo"' in page and "replaced-by → Patient/pa" in page
    undone = steward.post_form(f"/mpi/review/{item}", {"action": "undo"}, f"/mpi/review/{item}")
    assert undone.status_code == 303
    assert 'id="action-merge"' in steward.get(f"/mpi/review/{item}").text


def test_forged_and_bad_requests_are_refused(steward: Browser, item: int) -> None:
    forged = steward.http.post(f"/mpi/review/{item}", data={"action": "link", "csrf_token": "x"})
    assert forged.status_code == 403
    bad = steward.post_form(f"/mpi/review/{item}", {"action": "merge", "survivor": "zz"},
                            page=f"/mpi/review/{item}")  # fmt: skip
    assert bad.status_code == 400 and "mpi-merge-survivor" in bad.text
    assert steward.get("/mpi/review?order=sideways").status_code == 400
    assert steward.get("/mpi/review/999999").status_code == 404


def test_other_roles_may_not_review(engine: Engine, item: int) -> None:
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    token = bearer_token(engine, "cdc-user", Role.CDC)
    with TestClient(app, raise_server_exceptions=False) as http:
        assert http.get("/mpi/review", follow_redirects=False).status_code == 303  # sign in
        r = http.get("/api/mpi/review", headers=auth_header(token))
        assert r.status_code == 403 and "mpi-steward" in r.text


def test_api_decides_undoes_and_merges_the_fhir_way(engine: Engine, item: int) -> None:
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    headers = auth_header(bearer_token(engine, "api-steward", Role.STEWARD))
    with TestClient(app, raise_server_exceptions=False, headers=headers) as http:
        listed = http.get("/api/mpi/review").json()["items"]
        assert [i["id"] for i in listed][0] == item and listed[0]["probability"] == 0.73
        r = http.post(f"/api/mpi/review/{item}/decision", json={"action": "link"})
        assert r.status_code == 200 and r.json()["status"] == "linked"
        again = http.post(f"/api/mpi/review/{item}/decision", json={"action": "not-link"})
        assert again.status_code == 409 and "mpi-review-open" in again.text
        assert http.post(f"/api/mpi/review/{item}/undo").json()["status"] == "open"
        mine = http.get("/api/mpi/review", params={"patient": "pc"}).json()["items"]
        assert [i["patients"] for i in mine] == [["Patient/pa", "Patient/pc"]]
        shown = http.get(f"/api/mpi/review/{item}").json()
        assert [d["action"] for d in shown["decisions"]] == ["link", "undo"]
        merge = {"resourceType": "Parameters", "parameter": [
            {"name": "source-patient", "valueReference": {"reference": "Patient/pb"}},
            {"name": "target-patient", "valueReference": {"reference": "Patient/pa"}},
        ]}  # fmt: skip
        r = http.post("/fhir/Patient/$merge", json=merge)
        assert r.status_code == 200, r.text
        result = {p["name"]: p["resource"] for p in r.json()["parameter"]}["result"]
        assert result["link"] == [{"other": {"reference": "Patient/pb"}, "type": "replaces"}]
        duplicate = http.get("/fhir/Patient/pb").json()
        assert duplicate["active"] is False
        stranger = {"name": "target-patient", "valueReference": {"reference": "Patient/zz"}}
        unknown = {**merge, "parameter": [merge["parameter"][0], stranger]}
        r = http.post("/fhir/Patient/$merge", json=unknown)
        assert r.status_code == 400 and "merge-proposed-pair" in r.text
