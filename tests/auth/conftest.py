"""A small care network with one user per role, on both databases.

chc-a / chc-b are community health centers, tongren the regional hospital (department
tongren-cardiology), cdc the district CDC. Patients: p1 contracted with doc-a (active),
p2 with doc-b, p3 under an active referral to tongren, p4 with an encounter at tongren, p5 with a
*finished* contract with doc-a and a *completed* referral to chc-a, p6 under an active referral
to Practitioner/doc-a. Each patient has one Observation ``obs-<patient>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.fhir.conftest import FhirClient, auth_header, bearer_token
from yilian.app import create_app
from yilian.auth import Role

PATIENTS = ("p1", "p2", "p3", "p4", "p5", "p6")


def ref(target: str) -> dict[str, str]:
    return {"reference": target}


def _org(oid: str, part_of: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Organization", "id": oid, "name": oid}
    if part_of:
        body["partOf"] = ref(f"Organization/{part_of}")
    return body


def _contract(eid: str, patient: str, doctor: str, chc: str, status: str) -> dict[str, Any]:
    return {
        "resourceType": "EpisodeOfCare",
        "id": eid,
        "status": status,
        "patient": ref(f"Patient/{patient}"),
        "managingOrganization": ref(f"Organization/{chc}"),
        "careManager": ref(f"Practitioner/{doctor}"),
    }


def _referral(sid: str, patient: str, performer: str, status: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": sid,
        "status": status,
        "intent": "order",
        "subject": ref(f"Patient/{patient}"),
        "performer": [ref(performer)],
    }


def observation(oid: str, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": ref(f"Patient/{patient}"),
        "valueQuantity": {"value": 130, "unit": "mm[Hg]"},
    }


def world() -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = [
        _org("chc-a"),
        _org("chc-b"),
        _org("tongren"),
        _org("tongren-cardiology", "tongren"),
        _org("cdc"),
        {"resourceType": "Location", "id": "loc-a", "name": "A",
         "managingOrganization": ref("Organization/chc-a")},
        {"resourceType": "Location", "id": "loc-b", "name": "B",
         "managingOrganization": ref("Organization/chc-b")},
    ]  # fmt: skip
    for pid in ("doc-a", "doc-b", "spec-t"):
        resources.append({"resourceType": "Practitioner", "id": pid, "name": [{"text": pid}]})
    for pid in PATIENTS:
        resources.append({"resourceType": "Patient", "id": pid, "name": [{"family": pid}]})
        resources.append(observation(f"obs-{pid}", pid))
    resources += [
        _contract("fdc-p1", "p1", "doc-a", "chc-a", "active"),
        _contract("fdc-p2", "p2", "doc-b", "chc-b", "active"),
        _contract("fdc-p5", "p5", "doc-a", "chc-a", "finished"),
        _referral("ref-p3", "p3", "Organization/tongren", "active"),
        _referral("ref-p5", "p5", "Organization/chc-a", "completed"),
        _referral("ref-p6", "p6", "Practitioner/doc-a", "active"),
        {
            "resourceType": "Encounter",
            "id": "enc-p4",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": ref("Patient/p4"),
            "serviceProvider": ref("Organization/tongren-cardiology"),
        },
    ]
    return resources


USERS: dict[str, tuple[Role, dict[str, str]]] = {
    "admin": (Role.ADMIN, {}),
    "doctor": (Role.FAMILY_DOCTOR, {"practitioner_id": "doc-a", "organization_id": "chc-a"}),
    "specialist": (Role.SPECIALIST, {"practitioner_id": "spec-t", "organization_id": "tongren"}),
    "cdc": (Role.CDC, {"organization_id": "cdc"}),
    "manager": (Role.MANAGER, {}),
    "facility": (Role.FACILITY_ADMIN, {"organization_id": "chc-a"}),
    "resident": (Role.RESIDENT, {"patient_id": "p1"}),
    "steward": (Role.STEWARD, {}),
}


class Clients:
    """One authenticated client per demo role (``clients["doctor"]``), plus ``anonymous``."""

    def __init__(self, http: TestClient, tokens: dict[str, str]) -> None:
        self.http = http
        self.tokens = tokens

    def __getitem__(self, name: str) -> FhirClient:
        return RoleClient(self.http, self.tokens.get(name))


class RoleClient(FhirClient):
    def __init__(self, http: TestClient, token: str | None) -> None:
        super().__init__(http)
        self.token = token

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token is not None:
            headers.update(auth_header(self.token))
        return super().request(method, url, headers=headers, **kwargs)


@pytest.fixture
def clients(engine: Engine) -> Iterator[Clients]:
    tokens = {
        name: bearer_token(engine, name, role, **links) for name, (role, links) in USERS.items()
    }
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    with TestClient(app, raise_server_exceptions=False) as http:
        admin = RoleClient(http, tokens["admin"])
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in world()
            ],
        }
        response = admin.post("/fhir", json=bundle)
        assert response.status_code == 200, response.text
        yield Clients(http, tokens)
