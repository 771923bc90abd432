"""A hand-made five-resident district whose every count is known, dated relative to today.

Written through the store (validated R4, indexed as in production). The edges are deliberate:
a resident who turns 65 today (counts as 65+) and one who turns 65 tomorrow (does not), a
finished contract (not counted), a visit 29 days ago (inside the 30-day window) and one 40 days
ago (outside), a visit at 07:30 China time (the previous day in UTC), an organisation without a
tier ("other"), and a department whose referrals count for its hospital.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Engine

from yilian.auth import Role
from yilian.auth.passwords import hash_password
from yilian.auth.service import create_user, find_user
from yilian.db import session_factory, unit_of_work
from yilian.fhir import systems
from yilian.fhir.runtime import RequestContext, Runtime

CST = dt.timezone(dt.timedelta(hours=8))
PASSWORD = "web-test-password-1"
Json = dict[str, Any]


def china_today() -> dt.date:
    return dt.datetime.now(CST).date()


def years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _ref(res_type: str, res_id: str) -> Json:
    return {"reference": f"{res_type}/{res_id}"}


def _cc(system: str, code: str, display: str | None = None) -> Json:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def organization(res_id: str, name: str, tier: str | None, part_of: str | None = None) -> Json:
    types = [_cc(systems.HL7_ORGANIZATION_TYPE, "prov")]
    if tier:
        types.append(_cc(systems.ORGANIZATION_TIER, tier))
    body: Json = {"resourceType": "Organization", "id": res_id, "name": name, "type": types}
    if part_of:
        body["partOf"] = _ref("Organization", part_of)
    return body


def department(res_id: str, code: str, name: str, facility: str) -> Json:
    return {
        "resourceType": "Organization",
        "id": res_id,
        "name": name,
        "type": [_cc(systems.HL7_ORGANIZATION_TYPE, "dept"), _cc(systems.DEPARTMENT, code)],
        "partOf": _ref("Organization", facility),
    }


def location(res_id: str, beds: int, icu: int, fever: bool) -> Json:
    parts = [
        {"url": "beds", "valueUnsignedInt": beds},
        {"url": "icuBeds", "valueUnsignedInt": icu},
        {"url": "convertibleIcuBeds", "valueUnsignedInt": icu},
        {"url": "feverClinic", "valueBoolean": fever},
    ]
    return {
        "resourceType": "Location",
        "id": res_id,
        "name": f"site {res_id}",
        "extension": [{"url": systems.EXT_FACILITY_CAPACITY, "extension": parts}],
        "managingOrganization": _ref("Organization", res_id),
    }


def role(res_id: str, practitioner: str, org: str, code: str) -> Json:
    return {
        "resourceType": "PractitionerRole",
        "id": res_id,
        "practitioner": _ref("Practitioner", practitioner),
        "organization": _ref("Organization", org),
        "code": [_cc(systems.HL7_PRACTITIONER_ROLE, code)],
    }


def patient(res_id: str, name: str, gender: str, born: dt.date) -> Json:
    return {
        "resourceType": "Patient",
        "id": res_id,
        "name": [{"text": name, "family": name[0], "given": [name[1:]]}],
        "gender": gender,
        "birthDate": born.isoformat(),
    }


def contract(res_id: str, pid: str, doctor: str, chc: str, status: str) -> Json:
    return {
        "resourceType": "EpisodeOfCare",
        "id": res_id,
        "status": status,
        "type": [_cc(systems.FAMILY_DOCTOR_CONTRACT, "contract")],
        "patient": _ref("Patient", pid),
        "managingOrganization": _ref("Organization", chc),
        "careManager": _ref("Practitioner", doctor),
        "period": {"start": "2024-01-01"},
    }


def at(day: dt.date, hour: int = 10, minute: int = 0) -> str:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=CST).isoformat()


def encounter(
    res_id: str, pid: str, org: str, day: dt.date, reason: str, dept: str, hour: int = 10
) -> Json:
    return {
        "resourceType": "Encounter",
        "id": res_id,
        "status": "finished",
        "class": {"system": systems.HL7_ACT_CODE, "code": "AMB"},
        "serviceType": _cc(systems.DEPARTMENT, dept),
        "subject": _ref("Patient", pid),
        "period": {"start": at(day, hour, 30 if hour < 8 else 0)},
        "reasonCode": [_cc(systems.ICD10_WHO, reason)],
        "serviceProvider": _ref("Organization", org),
    }


def condition(res_id: str, pid: str, code: str, display: str) -> Json:
    return {
        "resourceType": "Condition",
        "id": res_id,
        "clinicalStatus": _cc(systems.HL7_CONDITION_CLINICAL, "active"),
        "code": _cc(systems.ICD10_WHO, code, display),
        "subject": _ref("Patient", pid),
        "onsetDateTime": "2020-05-01",
    }


def bp(res_id: str, pid: str, day: dt.date, sbp: int, dbp: int) -> Json:
    def part(code: str, value: int) -> Json:
        return {
            "code": _cc(systems.LOINC, code),
            "valueQuantity": {
                "value": value,
                "unit": "mmHg",
                "system": systems.UCUM,
                "code": "mm[Hg]",
            },
        }

    return {
        "resourceType": "Observation",
        "id": res_id,
        "status": "final",
        "code": _cc(systems.LOINC, "85354-9"),
        "subject": _ref("Patient", pid),
        "effectiveDateTime": at(day),
        "component": [part("8480-6", sbp), part("8462-4", dbp)],
    }


def glucose(res_id: str, pid: str, day: dt.date, value: float) -> Json:
    return {
        "resourceType": "Observation",
        "id": res_id,
        "status": "final",
        "code": _cc(systems.LOINC, "14771-0"),
        "subject": _ref("Patient", pid),
        "effectiveDateTime": at(day),
        "valueQuantity": {
            "value": value,
            "unit": "mmol/L",
            "system": systems.UCUM,
            "code": "mmol/L",
        },
    }


def referral(res_id: str, pid: str, to: str, status: str, day: dt.date) -> Json:
    return {
        "resourceType": "ServiceRequest",
        "id": res_id,
        "status": status,
        "intent": "order",
        "priority": "urgent",
        "code": {"text": "上转"},
        "subject": _ref("Patient", pid),
        "authoredOn": at(day),
        "requester": _ref("Practitioner", "gp"),
        "performer": [_ref("Organization", to)],
    }


@dataclass(frozen=True)
class MiniDistrict:
    today: dt.date
    names: dict[str, str]  # patient id → name


# username → (role, links); the pages are checked against these users.
USERS: dict[str, tuple[Role, dict[str, str]]] = {
    "web-manager": (Role.MANAGER, {}),
    "web-doctor": (Role.FAMILY_DOCTOR, {"practitioner_id": "gp", "organization_id": "chc"}),
    "web-specialist": (Role.SPECIALIST, {"practitioner_id": "spec", "organization_id": "hosp"}),
    "web-cdc": (Role.CDC, {}),
    "web-facility": (Role.FACILITY_ADMIN, {"organization_id": "chc"}),
    "web-resident": (Role.RESIDENT, {"patient_id": "pa"}),
    "web-admin": (Role.ADMIN, {}),
}


def resources(today: dt.date) -> list[Json]:
    d = dt.timedelta
    return [
        organization("muni", "市级医院甲", "municipal"),
        organization("hosp", "区医院乙", "district-regional"),
        department("hosp-cardiology", "cardiology", "区医院乙心内科", "hosp"),
        organization("chc", "社区中心丙", "community"),
        organization("sta", "服务站丁", "station", part_of="chc"),
        organization("ext", "外区诊所", None),
        location("hosp", 100, 10, True),
        location("chc", 40, 0, True),
        {"resourceType": "Practitioner", "id": "gp", "name": [{"text": "张医生"}]},
        {"resourceType": "Practitioner", "id": "gp2", "name": [{"text": "李医生"}]},
        {"resourceType": "Practitioner", "id": "nurse", "name": [{"text": "王护士"}]},
        {"resourceType": "Practitioner", "id": "spec", "name": [{"text": "赵医生"}]},
        role("gp-chc", "gp", "chc", "doctor"),
        role("gp2-chc", "gp2", "chc", "doctor"),
        role("nurse-chc", "nurse", "chc", "nurse"),
        role("spec-hosp", "spec", "hosp", "doctor"),
        patient("pa", "陈阿大", "male", years_before(today, 70)),
        patient("pb", "林二妹", "female", years_before(today, 65)),  # 65 today
        patient("pc", "周三", "male", years_before(today, 30)),
        patient("pd", "吴四", "female", years_before(today, 65) + d(days=1)),  # 65 tomorrow
        patient("pe", "郑五", "male", dt.date(1950, 3, 1)),
        contract("pa-fdc", "pa", "gp", "chc", "active"),
        contract("pb-fdc", "pb", "gp", "chc", "active"),
        contract("pc-fdc", "pc", "gp", "chc", "finished"),
        contract("pe-fdc", "pe", "gp2", "chc", "active"),
        condition("pa-htn", "pa", "I10", "Essential (primary) hypertension"),
        condition("pa-dm", "pa", "E11.9", "Type 2 diabetes mellitus without complications"),
        bp("pa-bp1", "pa", today - d(days=200), 152, 94),
        bp("pa-bp2", "pa", today - d(days=3), 138, 86),
        glucose("pa-glu1", "pa", today - d(days=3), 7.4),
        encounter("pa-e1", "pa", "chc", today - d(days=3), "J06.9", "general-practice"),
        encounter("pa-e2", "pa", "hosp", today - d(days=40), "A09", "internal-medicine"),
        encounter("pb-e1", "pb", "sta", today - d(days=10), "J11.1", "fever-clinic"),
        encounter("pc-e1", "pc", "muni", today - d(days=1), "K52.9", "gastroenterology", hour=7),
        encounter("pd-e1", "pd", "ext", today, "M54.5", "orthopaedics", hour=7),
        encounter("pd-e2", "pd", "hosp", today - d(days=29), "R51", "neurology"),
        referral("pc-ref1", "pc", "hosp-cardiology", "active", today - d(days=2)),
    ]


NAMES = {"pa": "陈阿大", "pb": "林二妹", "pc": "周三", "pd": "吴四", "pe": "郑五"}


@cache
def password_hash() -> str:
    """One scrypt hash shared by the test users (hashing costs ~1 s each; verifying is real)."""
    return hash_password(PASSWORD)


def build(engine: Engine, today: dt.date | None = None) -> MiniDistrict:
    """Write the district and the users of every role (password ``PASSWORD``)."""
    today = today or china_today()
    runtime = Runtime(engine, "http://testserver/fhir")
    with runtime.transaction(RequestContext.system("system/web-tests")) as service:
        for resource in resources(today):
            service.store.create(resource, res_id=resource["id"])
    with unit_of_work(session_factory(engine)) as session:
        for username, (user_role, links) in USERS.items():
            if find_user(session, username) is None:
                user = create_user(session, username, user_role, **links)
                user.password_hash = password_hash()
    return MiniDistrict(today, dict(NAMES))
