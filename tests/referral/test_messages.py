"""A referral's messages as FHIR Communication: workflow notifications, the resident's
where-and-when, notes between the facilities — over HTTP, on both databases."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.referral.test_api import http, next_weekday, ok, user  # noqa: F401 (fixture)
from yilian.auth import Role
from yilian.fhir import systems


def kinds(bundle: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(category, first recipient, text) of each Communication, in order."""
    out = []
    for entry in bundle.get("entry", []):
        c = entry["resource"]
        code = c["category"][0]["coding"][0]
        assert code["system"] == systems.REFERRAL_MESSAGE
        out.append((code["code"], c["recipient"][0]["reference"], c["payload"][0]["contentString"]))
    return out


def test_referral_steps_and_notes_are_communications(
    engine: Engine,
    http: TestClient,  # noqa: F811
) -> None:
    doctor = user(engine, "fd-chen", Role.FAMILY_DOCTOR, practitioner_id="dr-chen",
                  organization_id="chc-xinhua")  # fmt: skip
    desk = user(engine, "desk-zhou", Role.SPECIALIST, practitioner_id="dr-zhou",
                organization_id="tongren")  # fmt: skip
    other = user(engine, "fd-liu", Role.FAMILY_DOCTOR, practitioner_id="dr-liu",
                 organization_id="chc-jiangsu")  # fmt: skip
    resident = user(engine, "wang", Role.RESIDENT, patient_id="p-wang")
    facility = user(engine, "tongren-admin", Role.FACILITY_ADMIN, organization_id="tongren")
    day = next_weekday(3).isoformat()
    plan = {"organization": "tongren", "department": "cardiology", "location": "tongren",
            "first": day, "last": day, "clinic_level": "expert"}  # fmt: skip
    ok(http.post("/api/referral/slots/generate", json=plan, headers=facility), 201)
    contract = {
        "patient": "p-wang",
        "district_hospital": "tongren",
        "municipal_hospital": "huashan",
    }
    ok(http.post("/api/referral/contracts", headers=doctor, json=contract), 201)
    slots = ok(http.get("/fhir/Slot", headers=doctor, params={
        "_tag": f"{systems.SLOT_CHANNEL}|community-referral", "_sort": "start"}))  # fmt: skip
    made = ok(http.post("/api/referral/refer-and-book", headers=doctor, json={
        "patient": "p-wang", "target": "tongren", "reason": "血压控制不满意", "priority": "urgent",
        "slot": slots["entry"][0]["resource"]["id"]}), 201)  # fmt: skip
    task, request = made["task"]["id"], made["serviceRequest"]["id"]
    ok(http.post(f"/api/referral/referrals/{task}/accept", json={}, headers=desk))
    note = ok(http.post(f"/api/referral/referrals/{task}/messages", headers=desk,
                        json={"text": "请带近三个月血压记录"}), 201)  # fmt: skip
    assert note["resourceType"] == "Communication"
    assert note["recipient"] == [{"reference": "Organization/chc-xinhua"}]
    outsider = http.post(f"/api/referral/referrals/{task}/messages", headers=other,
                         json={"text": "?"})  # fmt: skip
    assert outsider.status_code == 403  # neither party: cannot even read the referral
    empty = http.post(f"/api/referral/referrals/{task}/messages", headers=desk, json={"text": ""})
    assert empty.status_code == 400 and "text" in empty.text
    found = ok(
        http.get(
            "/fhir/Communication",
            headers=doctor,
            params={"based-on": f"ServiceRequest/{request}", "_sort": "sent"},
        )
    )
    got = kinds(found)  # fmt: skip
    assert [(k, to) for k, to, _ in got] == [
        ("notification", "Organization/tongren"),  # referred up, with the reason
        ("instruction", "Patient/p-wang"),  # where and when, at booking
        ("notification", "Organization/chc-xinhua"),  # accepted
        ("instruction", "Patient/p-wang"),  # where and when, on acceptance
        ("note", "Organization/chc-xinhua"),
    ]
    assert "血压控制不满意" in got[0][2]
    assert "上海市同仁医院" in got[1][2] and day in got[1][2]  # the clinic's name and the day
    assert got[3][2].startswith("医院已接受您的转诊。") and day in got[3][2]
    mine = ok(http.get("/fhir/Communication", headers=resident,
                       params={"recipient": "Patient/p-wang"}))  # fmt: skip
    assert len(mine["entry"]) == 2  # the resident reads his where-and-when
    down = ok(http.post("/api/referral/refer-down", headers=desk, json={
        "patient": "p-wang", "summary": "出院小结", "follow_up_plan": "每月复诊",
        "reason": "康复期下转"}), 201)  # fmt: skip
    back = ok(http.get("/fhir/Communication", headers=resident, params={
        "based-on": f"ServiceRequest/{down['serviceRequest']['id']}"}))  # fmt: skip
    texts = [t for _, to, t in kinds(back) if to == "Patient/p-wang"]
    assert len(texts) == 1 and "新华街道社区卫生服务中心" in texts[0] and "每月复诊" in texts[0]
