"""What the rule's own writes may not be used for: signing and booking on behalf of others.

Contract signing and the booking hook write past the user's access guard (ADR 0007 §3: the
consequence of a rule, same transaction, audited as the user). These tests pin the explicit
checks in front of those writes: only a family doctor signs, for himself and his own CHC; a
family doctor books only for residents in his care; nobody but the rule turns a hospital's Slot
busy or free; a booking someone may not delete stays booked. Over HTTP, on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.referral.test_api import http, next_weekday, ok, user  # noqa: F401 (fixture)
from yilian.auth import Role

CONTRACT = {"patient": "p-li", "district_hospital": "tongren", "municipal_hospital": "huashan"}


@pytest.fixture
def people(engine: Engine, http: TestClient) -> Iterator[dict[str, dict[str, str]]]:  # noqa: F811
    yield {
        "doctor": user(engine, "fd-chen", Role.FAMILY_DOCTOR, practitioner_id="dr-chen",
                       organization_id="chc-xinhua"),
        "resident": user(engine, "wang", Role.RESIDENT, patient_id="p-wang"),
        "facility": user(engine, "tongren-admin", Role.FACILITY_ADMIN, organization_id="tongren"),
        "admin": user(engine, "root", Role.ADMIN),
    }  # fmt: skip


def _public_slot(http: TestClient, people: dict[str, dict[str, str]]) -> dict[str, Any]:  # noqa: F811
    day = next_weekday(3).isoformat()
    plan = {"organization": "tongren", "department": "cardiology", "location": "tongren",
            "first": day, "last": day, "clinic_level": "general"}  # fmt: skip
    ok(http.post("/api/referral/slots/generate", json=plan, headers=people["facility"]), 201)
    found = ok(http.get("/fhir/Slot", params={"status": "free", "_sort": "start", "_count": "50"},
                        headers=people["admin"]))  # fmt: skip
    slots = [e["resource"] for e in found["entry"]]
    return next(s for s in slots if "meta" not in s or not s["meta"].get("tag"))


def _appointment(slot: dict[str, Any], patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Appointment", "status": "booked", "start": slot["start"],
        "end": slot["end"], "slot": [{"reference": f"Slot/{slot['id']}"}],
        "participant": [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"}],
    }  # fmt: skip


def _slot_status(http: TestClient, people: dict[str, dict[str, str]], slot_id: str) -> str:  # noqa: F811
    return str(ok(http.get(f"/fhir/Slot/{slot_id}", headers=people["admin"]))["status"])


def test_only_a_family_doctor_signs_for_himself_at_his_chc(
    http: TestClient,  # noqa: F811
    people: dict[str, dict[str, str]],
) -> None:
    resident = http.post("/api/referral/contracts", json=CONTRACT, headers=people["resident"])
    assert resident.status_code == 403 and "referral-role" in resident.text
    other_doctor = http.post("/api/referral/contracts", headers=people["doctor"],
                             json={**CONTRACT, "family_doctor": "dr-liu"})  # fmt: skip
    assert other_doctor.status_code == 403
    assert (
        "contract-own-family-doctor" in other_doctor.text and "family_doctor" in other_doctor.text
    )
    other_chc = http.post("/api/referral/contracts", headers=people["doctor"],
                          json={**CONTRACT, "chc": "chc-jiangsu"})  # fmt: skip
    assert other_chc.status_code == 403 and "contract-own-chc" in other_chc.text
    none = ok(http.get("/fhir/CareTeam", params={"patient": "Patient/p-li"},
                       headers=people["admin"]))  # fmt: skip
    assert none.get("entry", []) == []  # nothing written by the refused requests
    ok(http.post("/api/referral/contracts", json=CONTRACT, headers=people["doctor"]), 201)


def test_booking_only_for_ones_own_patients(
    http: TestClient,  # noqa: F811
    people: dict[str, dict[str, str]],
) -> None:
    slot = _public_slot(http, people)
    resident = http.post("/fhir/Appointment", json=_appointment(slot, "p-wang"),
                         headers=people["resident"])  # fmt: skip
    assert resident.status_code == 403, resident.text  # residents do not write Appointments
    stranger = http.post("/fhir/Appointment", json=_appointment(slot, "p-li"),
                         headers=people["doctor"])  # fmt: skip
    assert stranger.status_code == 403, stranger.text  # p-li is not (yet) in his care
    assert _slot_status(http, people, slot["id"]) == "free"  # the hook never wrote the Slot
    ok(http.post("/api/referral/contracts", json=CONTRACT, headers=people["doctor"]), 201)
    mine = http.post("/fhir/Appointment", json=_appointment(slot, "p-li"),
                     headers=people["doctor"])  # fmt: skip
    assert mine.status_code == 201, mine.text
    assert _slot_status(http, people, slot["id"]) == "busy"


def test_slots_change_only_through_the_booking_rule(
    http: TestClient,  # noqa: F811
    people: dict[str, dict[str, str]],
) -> None:
    slot = _public_slot(http, people)
    for who in ("doctor", "resident"):
        forced = http.put(f"/fhir/Slot/{slot['id']}", json={**slot, "status": "busy"},
                          headers=people[who])  # fmt: skip
        assert forced.status_code == 403, (who, forced.text)
    assert _slot_status(http, people, slot["id"]) == "free"
    booked = ok(http.post("/fhir/Appointment", json=_appointment(slot, "p-li"),
                          headers=people["admin"]), 201)  # fmt: skip
    stranger = http.delete(f"/fhir/Appointment/{booked['id']}", headers=people["resident"])
    assert stranger.status_code == 403  # not his appointment: it and its slot stay
    assert _slot_status(http, people, slot["id"]) == "busy"
    assert http.delete(f"/fhir/Appointment/{booked['id']}",
                       headers=people["admin"]).status_code in (200, 204)  # fmt: skip
    assert _slot_status(http, people, slot["id"]) == "free"  # the delete freed it
