"""The referral desk's queue as one SQL query: order, paging with a total, the access restriction,
input validation — through the API as the hospital's specialist, on both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.fhir.conftest import auth_header, bearer_token
from tests.referral.conftest import BOOKING_TIME, Network, make_network
from tests.referral.test_pages import PASSWORD, login
from yilian.app import create_app
from yilian.auth import Role
from yilian.auth.service import create_user
from yilian.db import session_factory, unit_of_work
from yilian.fhir.errors import FhirError
from yilian.referral import service
from yilian.referral.queue import queue_page
from yilian.referral.service import Acting, ReferralInput

CHC = Acting("chc-xinhua", "dr-chen")
OTHER_CHC = Acting("chc-jiangsu", "dr-liu")


def refer(network: Network, patient: str, priority: str, minutes: int, by: Acting = CHC) -> str:
    data = ReferralInput(patient, "tongren", "转诊", priority)
    when = BOOKING_TIME + dt.timedelta(minutes=minutes)
    made = network.run(lambda svc: service.refer(svc, by, data, "up", when), org=by.organization)
    return str(made.task["id"])


@pytest.fixture
def network(engine: Engine) -> Network:
    return make_network(engine)


@pytest.fixture
def desk(engine: Engine, network: Network) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    header = auth_header(
        bearer_token(
            engine,
            "desk-zhou",
            Role.SPECIALIST,
            practitioner_id="dr-zhou",
            organization_id="tongren",
        )  # fmt: skip
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, header


def page(desk: tuple[TestClient, dict[str, str]], query: str) -> dict[str, Any]:
    client, header = desk
    response = client.get(f"/api/referral/queue?{query}", headers=header)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_pages_follow_the_queue_order_with_the_total(
    network: Network, desk: tuple[TestClient, dict[str, str]]
) -> None:
    made = [
        refer(network, "p-li", "routine", 0),
        refer(network, "p-wang", "stat", 50),
        refer(network, "p-li", "urgent", 20),
        refer(network, "p-wang", "routine", -40, OTHER_CHC),
        refer(network, "p-li", "asap", 10),
    ]
    whole = page(desk, "limit=100")
    order = [t["id"] for t in whole["tasks"]]
    assert whole["total"] == 5 and sorted(order) == sorted(made)
    assert order[:3] == [made[1], made[4], made[2]]  # stat, asap, urgent
    assert order[3:] == [made[3], made[0]]  # routine: the longest waiting first
    assert [t["id"] for t in sorted(whole["tasks"], key=service.queue_key)] == order
    pages = [page(desk, f"limit=2&offset={offset}") for offset in (0, 2, 4, 6)]
    assert [t["id"] for p in pages for t in p["tasks"]] == order
    assert [p["total"] for p in pages] == [5, 5, 5, 5] and pages[-1]["tasks"] == []


def test_the_queue_counts_only_what_the_desk_may_read(
    network: Network, desk: tuple[TestClient, dict[str, str]]
) -> None:
    visible = refer(network, "p-li", "routine", 0)
    hidden = refer(network, "p-zhao", "stat", 0)
    # p-zhao's referral request withdrawn behind the Task's back: the hospital no longer has a
    # referral of his (rule referral-to-my-organization), so his Task leaves its view and count.
    request_id = network.run(lambda svc: svc.store.read("Task", hidden))["focus"]["reference"]
    request = network.run(lambda svc: svc.store.read("ServiceRequest", request_id.split("/")[1]))
    network.run(lambda svc: svc.store.update("ServiceRequest", request["id"],
                                             {**request, "status": "revoked"}))  # fmt: skip
    body = page(desk, "limit=10")
    assert [t["id"] for t in body["tasks"]] == [visible] and body["total"] == 1


def test_window_is_validated(network: Network, desk: tuple[TestClient, dict[str, str]]) -> None:
    client, header = desk
    for query in ("limit=0", "limit=1001", "offset=-1", "limit=x"):
        response = client.get(f"/api/referral/queue?{query}", headers=header)
        field = query.split("=")[0]
        assert response.status_code == 400 and field in response.text, query
    with network.runtime.transaction(network.ctx) as svc:
        for limit, offset, rule in ((0, 0, "queue-limit"), (10, -1, "queue-offset")):
            with pytest.raises(FhirError) as caught:
                queue_page(svc, "tongren", limit=limit, offset=offset)
            assert caught.value.status == 400 and rule in str(caught.value.issues)


def test_the_page_shows_fifty_a_page_with_links(engine: Engine, network: Network) -> None:
    for n in range(52):
        refer(network, ("p-li", "p-wang", "p-zhao")[n % 3], "routine", n)
    with unit_of_work(session_factory(engine)) as session:
        create_user(session, "desk-zhou", Role.SPECIALIST, password=PASSWORD,
                    practitioner_id="dr-zhou", organization_id="tongren")  # fmt: skip
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    with TestClient(app, follow_redirects=False) as browser:
        login(browser, "desk-zhou")
        first = browser.get("/referral/queue")
        assert first.status_code == 200 and first.text.count("data-task=") == 50
        assert "第 1–50 条，共 52 条" in first.text
        assert 'href="/referral/queue?page=2"' in first.text
        second = browser.get("/referral/queue?page=2")
        assert second.text.count("data-task=") == 2 and "第 51–52 条，共 52 条" in second.text
        assert 'id="queue-next"' not in second.text and 'id="queue-previous"' in second.text
        for bad in ("0", "x", "-1"):
            refused = browser.get(f"/referral/queue?page={bad}")
            assert refused.status_code == 400 and "page" in refused.text
