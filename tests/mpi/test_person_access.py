"""A person's registrations are read together: ``$everything`` of any member returns every
linked Patient's compartment, and whoever may see one registration may see the linked ones
(rule linked-records), on both databases. World: tests/auth/conftest.py (doc-a sees p1)."""

from __future__ import annotations

from typing import Any

from tests.auth.conftest import Clients, clients  # noqa: F401 - the fixture
from tests.auth.test_policy import ids


def link(body: dict[str, Any], *others: str) -> dict[str, Any]:
    return {
        **body,
        "link": [{"other": {"reference": f"Patient/{o}"}, "type": "seealso"} for o in others],
    }


def patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": pid}]}


def test_linked_registrations_are_one_record(clients: Clients) -> None:  # noqa: F811
    admin, doctor = clients["admin"], clients["doctor"]
    assert doctor.get("/fhir/Patient/p2").status_code == 403  # doc-b's patient
    # p2 is the same person as doc-a's p1 (linked both ways); p4 points at p1 only
    assert admin.put("/fhir/Patient/p2", json=link(patient("p2"), "p1")).status_code == 200
    assert admin.put("/fhir/Patient/p1", json=link(patient("p1"), "p2")).status_code == 200
    assert admin.put("/fhir/Patient/p4", json=link(patient("p4"), "p1")).status_code == 200
    for member in ("p2", "p4"):
        assert doctor.get(f"/fhir/Patient/{member}").status_code == 200
        assert doctor.get(f"/fhir/Observation/obs-{member}").status_code == 200
    assert doctor.get("/fhir/Patient/p3").status_code == 403  # not linked: still his rule
    assert ids(doctor.get("/fhir/Patient").json()) == {
        "Patient/p1", "Patient/p2", "Patient/p4", "Patient/p6",
    }  # fmt: skip
    observations = ids(doctor.get("/fhir/Observation").json())
    assert {"Observation/obs-p2", "Observation/obs-p4"} <= observations
    assert "Observation/obs-p3" not in observations
    # $everything of any member: the whole person
    for start in ("p1", "p2", "p4"):
        bundle = doctor.get(f"/fhir/Patient/{start}/$everything").json()
        found = ids(bundle)
        assert {"Patient/p1", "Patient/p2", "Patient/p4"} <= found, start
        assert {"Observation/obs-p1", "Observation/obs-p2", "Observation/obs-p4"} <= found
        assert bundle["entry"][0]["resource"]["id"] == start
        assert "Observation/obs-p3" not in found
    # an unlinked patient's $everything is his own record only
    alone = ids(admin.get("/fhir/Patient/p6/$everything").json())
    assert alone == {"Patient/p6", "Observation/obs-p6", "ServiceRequest/ref-p6"}
    # the specialist sees p4 (an encounter at his hospital): now p4's whole person, not p6
    specialist = clients["specialist"]
    assert specialist.get("/fhir/Patient/p2").status_code == 200
    assert specialist.get("/fhir/Patient/p6").status_code == 403
    # unlinking ends it
    assert admin.put("/fhir/Patient/p4", json=patient("p4")).status_code == 200
    assert specialist.get("/fhir/Patient/p2").status_code == 403
