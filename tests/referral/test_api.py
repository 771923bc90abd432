"""The referral API end to end over HTTP, as the users of issue #5, on both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.fhir.conftest import auth_header, bearer_token, check_returned
from tests.referral.conftest import make_network
from yilian.app import create_app
from yilian.auth import Role


def next_weekday(after_days: int) -> dt.date:
    day = dt.date.today() + dt.timedelta(days=after_days)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


@pytest.fixture
def http(engine: Engine) -> Iterator[TestClient]:
    make_network(engine)
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def user(engine: Engine, name: str, role: Role, **links: str) -> dict[str, str]:
    return auth_header(bearer_token(engine, name, role, **links))


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    for value in body.values() if isinstance(body, dict) else []:
        if isinstance(value, dict):
            check_returned(value)
    return body


def test_contract_refer_book_accept_and_refer_down(engine: Engine, http: TestClient) -> None:
    doctor = user(
        engine,
        "fd-chen",
        Role.FAMILY_DOCTOR,
        practitioner_id="dr-chen",
        organization_id="chc-xinhua",
    )
    desk = user(
        engine, "desk-zhou", Role.SPECIALIST, practitioner_id="dr-zhou", organization_id="tongren"
    )
    facility = user(engine, "tongren-admin", Role.FACILITY_ADMIN, organization_id="tongren")
    manager = user(engine, "mgr", Role.MANAGER)
    day = next_weekday(3)
    plan = {
        "organization": "tongren",
        "department": "cardiology",
        "location": "tongren",
        "first": day.isoformat(),
        "last": day.isoformat(),
        "clinic_level": "expert",
    }
    made = ok(http.post("/api/referral/slots/generate", json=plan, headers=facility), 201)
    assert made["created"] == 26 and made["reserved"] == 5
    contract = ok(
        http.post(
            "/api/referral/contracts",
            headers=doctor,
            json={
                "patient": "p-wang",
                "district_hospital": "tongren",
                "municipal_hospital": "huashan",
            },
        ),
        201,
    )
    groups = [e["valueCoding"]["code"] for e in contract["episodeOfCare"].get("extension", [])]
    assert groups == ["elderly-60"]
    reserved = http.get(
        "/fhir/Slot",
        params={
            "_tag": "http://yilian.health/fhir/CodeSystem/slot-channel|community-referral",
            "_sort": "start",
        },
        headers=doctor,
    )
    slot_id = ok(reserved)["entry"][0]["resource"]["id"]
    booked = ok(
        http.post(
            "/api/referral/refer-and-book",
            headers=doctor,
            json={
                "patient": "p-wang",
                "target": "tongren",
                "reason": "血压控制不满意",
                "priority": "urgent",
                "slot": slot_id,
            },
        ),
        201,
    )
    task_id = booked["task"]["id"]
    again = http.post(
        "/api/referral/refer-and-book",
        headers=doctor,
        json={
            "patient": "p-wang",
            "target": "tongren",
            "reason": "重复",
            "priority": "urgent",
            "slot": slot_id,
        },
    )
    assert again.status_code == 409 and "slot-busy" in again.text
    queue = ok(http.get("/api/referral/queue", headers=desk))
    assert [t["id"] for t in queue["tasks"]] == [task_id]
    wrong = http.post(f"/api/referral/referrals/{task_id}/accept", json={}, headers=doctor)
    assert wrong.status_code == 403 and "referral-actor" in wrong.text
    ok(http.post(f"/api/referral/referrals/{task_id}/accept", json={}, headers=desk))
    bad = http.post(f"/api/referral/referrals/{task_id}/accept", json={}, headers=desk)
    assert bad.status_code == 409 and "referral-transition" in bad.text
    ok(http.post(f"/api/referral/referrals/{task_id}/complete", json={}, headers=desk))
    stay = {
        "resourceType": "Encounter",
        "status": "finished",
        "subject": {"reference": "Patient/p-wang"},
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "serviceProvider": {"reference": "Organization/tongren"},
    }
    admin = user(engine, "admin", Role.ADMIN)
    ok(http.post("/fhir/Encounter", json=stay, headers=admin), 201)  # the admission
    down = ok(
        http.post(
            "/api/referral/refer-down",
            headers=desk,
            json={
                "patient": "p-wang",
                "summary": "冠心病PCI术后，病情稳定",
                "follow_up_plan": "每月复诊，监测血压血脂",
                "reason": "术后康复下转",
            },
        ),
        201,
    )
    assert down["task"]["owner"]["reference"] == "Organization/chc-xinhua"
    figures = ok(http.get("/api/referral/stats", headers=manager))
    assert figures["up_referrals"] == 1 and figures["down_referrals"] == 1
    assert figures["up_completion_rate"] == 1.0
    assert (
        figures["reserved_slots"]["used"] == 1 and figures["reserved_slots"]["unused_reserved"] == 4
    )
    assert http.get("/api/referral/stats", headers=doctor).status_code == 403


def test_plain_fhir_booking_rules(engine: Engine, http: TestClient) -> None:
    admin = user(engine, "facility", Role.ADMIN)
    hospital_doctor = user(
        engine, "dr-hs", Role.SPECIALIST, practitioner_id="dr-liu", organization_id="huashan"
    )
    day = next_weekday(3)
    plan = {
        "organization": "tongren",
        "department": "cardiology",
        "location": "tongren",
        "first": day.isoformat(),
        "last": day.isoformat(),
        "clinic_level": "expert",
    }
    ok(http.post("/api/referral/slots/generate", json=plan, headers=admin), 201)
    slots = ok(http.get("/fhir/Slot", params={"_count": "100", "_sort": "start"}, headers=admin))
    by_channel: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for entry in slots["entry"]:
        by_channel[
            "extension" in entry["resource"]
            and any(
                e["url"].endswith("slot-reserved-channel") for e in entry["resource"]["extension"]
            )
        ].append(entry["resource"])

    def appointment(slot: dict[str, Any]) -> dict[str, Any]:
        return {
            "resourceType": "Appointment",
            "status": "booked",
            "start": slot["start"],
            "end": slot["end"],
            "slot": [{"reference": f"Slot/{slot['id']}"}],
            "participant": [{"actor": {"reference": "Patient/p-li"}, "status": "accepted"}],
        }

    public = by_channel[False][0]
    first = http.post("/fhir/Appointment", json=appointment(public), headers=admin)
    assert first.status_code == 201, first.text
    assert ok(http.get(f"/fhir/Slot/{public['id']}", headers=admin))["status"] == "busy"
    second = http.post("/fhir/Appointment", json=appointment(public), headers=admin)
    assert second.status_code == 409
    outcome = second.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any("alternative: Slot/" in i["diagnostics"] for i in outcome["issue"][1:])
    reserved = by_channel[True][0]
    refused = http.post("/fhir/Appointment", json=appointment(reserved), headers=admin)
    assert refused.status_code == 403 and "reserved-slot-channel" in refused.text
    assert hospital_doctor  # a hospital clinician has no CHC channel either (403 above: no org)
