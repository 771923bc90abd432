"""Each role sees and changes exactly what docs/authorization.md says, on both databases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from tests.auth.conftest import Clients, observation
from yilian.audit.models import AuditEntryRow
from yilian.audit.verify import verify
from yilian.cli import app as cli
from yilian.db import session_factory


def ids(bundle: dict[str, Any], mode: str = "match") -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == mode
    }


def rule_of(response: Any) -> str:
    return str(response.json()["issue"][0]["diagnostics"])


def denials(engine: Engine) -> list[AuditEntryRow]:
    with session_factory(engine)() as session:
        return list(
            session.execute(
                select(AuditEntryRow).where(AuditEntryRow.outcome != 0).order_by(AuditEntryRow.seq)
            ).scalars()
        )


def test_unauthenticated_is_401_and_audited(clients: Clients, engine: Engine) -> None:
    anonymous = clients["anonymous"]
    r = anonymous.get("/fhir/Patient/p1")
    assert r.status_code == 401
    assert r.json()["resourceType"] == "OperationOutcome"
    assert "[rule: authentication]" in rule_of(r)
    bad = anonymous.get("/fhir/Patient", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert anonymous.get("/fhir/metadata").status_code == 200  # the capability statement is public
    found = denials(engine)
    assert [(d.actor, d.outcome) for d in found] == [("anonymous", 8), ("anonymous", 8)]
    assert "authentication" in (found[0].outcome_desc or "")


def test_family_doctor_sees_panel_and_referrals_to_him(clients: Clients, engine: Engine) -> None:
    doctor = clients["doctor"]
    assert doctor.get("/fhir/Patient/p1").status_code == 200  # contracted
    assert doctor.get("/fhir/Patient/p6").status_code == 200  # active referral to him
    for other in ("p2", "p3", "p4", "p5"):  # other panel, other org, finished contract
        r = doctor.get(f"/fhir/Patient/{other}")
        assert r.status_code == 403, other
        assert "[rule: care-relationship]" in rule_of(r)
    assert doctor.get("/fhir/Observation/obs-p2").status_code == 403
    assert ids(doctor.get("/fhir/Patient").json()) == {"Patient/p1", "Patient/p6"}
    counted = doctor.get("/fhir/Observation?_summary=count").json()
    assert counted["total"] == 2
    # paging and totals are computed inside the SQL: a page of 1 of 2 with a next link
    page = doctor.get("/fhir/Observation?_count=1").json()
    assert page["total"] == 2 and any(link["relation"] == "next" for link in page["link"])
    nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
    second = doctor.get(nxt.replace("http://testserver", ""))
    assert second.status_code == 200 and len(second.json()["entry"]) == 1
    # another principal cannot read that snapshot
    assert clients["specialist"].get(nxt.replace("http://testserver", "")).status_code == 410
    # directory resources are readable by everyone
    assert doctor.get("/fhir/Organization/chc-b").status_code == 200
    # $everything of his patient; not of another
    everything = doctor.get("/fhir/Patient/p1/$everything").json()
    assert "Observation/obs-p1" in ids(everything)
    assert doctor.get("/fhir/Patient/p2/$everything").status_code == 403
    # writes within his panel only
    assert (
        doctor.put("/fhir/Observation/new-p1", json=observation("new-p1", "p1")).status_code == 201
    )
    r = doctor.put("/fhir/Observation/new-p2", json=observation("new-p2", "p2"))
    assert r.status_code == 403 and "[rule: care-relationship]" in rule_of(r)
    assert doctor.delete("/fhir/Observation/obs-p2").status_code == 403
    # moving a resource out of reach is refused too (the current version is checked)
    moved = observation("obs-p1", "p2")
    assert doctor.put("/fhir/Observation/obs-p1", json=moved).status_code == 403
    assert doctor.post("/fhir/Patient", json={"resourceType": "Patient"}).status_code == 403
    found = denials(engine)
    assert found and all(
        d.actor == "user/doctor" and d.actor_role == "family_doctor" for d in found
    )
    assert any("Patient/p2" in d.patients for d in found)


def test_includes_never_leak(clients: Clients) -> None:
    doctor = clients["doctor"]
    bundle = doctor.get(
        "/fhir/Organization?_id=tongren-cardiology&_revinclude=Encounter:service-provider"
    ).json()
    assert ids(bundle) == {"Organization/tongren-cardiology"}
    assert ids(bundle, "include") == set()
    bundle = doctor.get("/fhir/Observation?_include=Observation:subject").json()
    assert ids(bundle, "include") == {"Patient/p1", "Patient/p6"}
    bundle = doctor.get("/fhir/Patient?_revinclude=Observation:subject").json()
    assert ids(bundle, "include") == {"Observation/obs-p1", "Observation/obs-p6"}
    # the specialist's encounter is visible to him, with its patient
    specialist = clients["specialist"]
    bundle = specialist.get(
        "/fhir/Organization?_id=tongren-cardiology&_revinclude=Encounter:service-provider"
    ).json()
    assert ids(bundle, "include") == {"Encounter/enc-p4"}


def test_specialist_sees_referrals_and_encounters_at_his_hospital(clients: Clients) -> None:
    specialist = clients["specialist"]
    assert ids(specialist.get("/fhir/Patient").json()) == {"Patient/p3", "Patient/p4"}
    assert specialist.get("/fhir/Observation/obs-p3").status_code == 200
    assert specialist.get("/fhir/Observation/obs-p1").status_code == 403
    assert specialist.get("/fhir/Patient/p4/$everything").status_code == 200


def test_cdc_and_manager_see_no_individual_records(clients: Clients) -> None:
    for name in ("cdc", "manager"):
        user = clients[name]
        assert user.get("/fhir/Patient?_summary=count").json()["total"] == 0
        r = user.get("/fhir/Patient/p1")
        assert r.status_code == 403 and "[rule: no-individual-records]" in rule_of(r)
        assert user.get("/fhir/Organization").json()["total"] == 5
        assert user.get("/fhir/Location/loc-a").status_code == 200
        r = user.put("/fhir/Observation/x", json=observation("x", "p1"))
        assert r.status_code == 403 and "[rule: scope]" in rule_of(r)


def test_facility_admin_keeps_his_organisations_directory(clients: Clients) -> None:
    facility = clients["facility"]
    own = {"resourceType": "Location", "id": "loc-a", "name": "A2",
           "managingOrganization": {"reference": "Organization/chc-a"}}  # fmt: skip
    assert facility.put("/fhir/Location/loc-a", json=own).status_code == 200
    other = {**own, "id": "loc-b", "managingOrganization": {"reference": "Organization/chc-b"}}
    r = facility.put("/fhir/Location/loc-b", json=other)
    assert r.status_code == 403 and "[rule: facility-directory]" in rule_of(r)
    stolen = {**own, "managingOrganization": {"reference": "Organization/chc-b"}}
    assert facility.put("/fhir/Location/loc-a", json=stolen).status_code == 403
    assert facility.get("/fhir/Observation/obs-p1").status_code == 403
    assert facility.get("/fhir/Observation").json()["total"] == 0


def test_resident_reads_only_his_own_record(clients: Clients) -> None:
    resident = clients["resident"]
    assert resident.get("/fhir/Patient/p1").status_code == 200
    r = resident.get("/fhir/Patient/p2")
    assert r.status_code == 403 and "[rule: own-record]" in rule_of(r)
    assert ids(resident.get("/fhir/Observation").json()) == {"Observation/obs-p1"}
    assert resident.get("/fhir/Patient/p1/$everything").status_code == 200
    assert (
        resident.put("/fhir/Observation/obs-p1", json=observation("obs-p1", "p1")).status_code
        == 403
    )
    assert resident.get("/fhir/Organization/chc-a").status_code == 200


def test_steward_reads_registrations_and_changes_only_their_links(clients: Clients) -> None:
    steward = clients["steward"]
    assert steward.get("/fhir/Patient?_summary=count").json()["total"] == 6
    patient = steward.get("/fhir/Patient/p2").json()
    r = steward.get("/fhir/Observation/obs-p2")
    assert r.status_code == 403 and "[rule: scope]" in rule_of(r)
    linked = {**patient, "link": [{"other": {"reference": "Patient/p3"}, "type": "seealso"}]}
    assert steward.put("/fhir/Patient/p2", json=linked).status_code == 200
    renamed = {**linked, "name": [{"family": "someone else"}]}
    r = steward.put("/fhir/Patient/p2", json=renamed)
    assert r.status_code == 403 and "[rule: steward-links]" in rule_of(r)
    r = steward.put("/fhir/Patient/new", json={"resourceType": "Patient", "id": "new"})
    assert r.status_code == 403 and "[rule: steward-links]" in rule_of(r)


def test_audit_events_history_and_bulk_are_for_admins(clients: Clients) -> None:
    doctor, admin = clients["doctor"], clients["admin"]
    admin.get("/fhir/Patient/p1")
    assert admin.get("/fhir/AuditEvent").json()["total"] > 0
    r = doctor.get("/fhir/AuditEvent/audit-1")
    assert r.status_code == 403 and "[rule: admin-only]" in rule_of(r)
    assert doctor.get("/fhir/AuditEvent").json()["total"] == 0
    r = doctor.get("/fhir/Observation/_history")
    assert r.status_code == 403 and "[rule: history-across-records]" in rule_of(r)
    assert doctor.get("/fhir/_history").status_code == 403
    assert doctor.get("/fhir/Organization/_history").status_code == 200
    assert doctor.get("/fhir/Patient/p1/_history").status_code == 200
    assert doctor.get("/fhir/Patient/p2/_history").status_code == 403
    r = doctor.get("/fhir/$export", headers={"Prefer": "respond-async"})
    assert r.status_code == 403 and "[rule: bulk-admin]" in rule_of(r)


def test_bundles_are_checked_entry_by_entry(clients: Clients, engine: Engine) -> None:
    doctor = clients["doctor"]

    def entry(oid: str, patient: str) -> dict[str, Any]:
        return {
            "resource": observation(oid, patient),
            "request": {"method": "PUT", "url": f"Observation/{oid}"},
        }

    transaction = {"resourceType": "Bundle", "type": "transaction",
                   "entry": [entry("t1", "p1"), entry("t2", "p2")]}  # fmt: skip
    r = doctor.post("/fhir", json=transaction)
    assert r.status_code == 403 and "care-relationship" in rule_of(r)
    assert clients["admin"].get("/fhir/Observation/t1").status_code == 404  # nothing written
    batch = {**transaction, "type": "batch"}
    result = doctor.post("/fhir", json=batch).json()
    assert [e["response"]["status"][:3] for e in result["entry"]] == ["201", "403"]
    get = {"resourceType": "Bundle", "type": "batch",
           "entry": [{"request": {"method": "GET", "url": "Patient/p2"}}]}  # fmt: skip
    assert doctor.post("/fhir", json=get).json()["entry"][0]["response"]["status"] == "403"
    assert len([d for d in denials(engine) if d.actor == "user/doctor"]) == 3


def test_break_glass_opens_one_patient_loudly(
    clients: Clients, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor = clients["doctor"]
    reason = {"X-Break-Glass": "unconscious patient brought to the CHC, no contract on file"}
    r = doctor.get("/fhir/Patient/p2", headers=reason)
    assert r.status_code == 200
    found = doctor.get("/fhir/Observation?patient=p2", headers=reason).json()
    assert ids(found) == {"Observation/obs-p2"}
    assert doctor.get("/fhir/Patient/p2/$everything", headers=reason).status_code == 200
    r = doctor.get("/fhir/Observation", headers=reason)
    assert r.status_code == 400 and "break-glass-one-patient" in rule_of(r)
    r = doctor.get("/fhir/Patient/p2", headers={"X-Break-Glass": "x"})
    assert r.status_code == 400 and "break-glass-reason" in rule_of(r)
    r = doctor.put("/fhir/Observation/obs-p2", json=observation("obs-p2", "p2"), headers=reason)
    assert r.status_code == 403 and "break-glass-read-only" in rule_of(r)
    r = clients["resident"].get("/fhir/Patient/p2", headers=reason)
    assert r.status_code == 403 and "break-glass-clinicians" in rule_of(r)
    with session_factory(engine)() as session:
        glass = list(
            session.execute(
                select(AuditEntryRow).where(
                    AuditEntryRow.purpose == "BTG", AuditEntryRow.outcome == 0
                )
            ).scalars()
        )
    assert len(glass) == 3
    assert all("unconscious patient" in (g.outcome_desc or "") for g in glass)
    assert all(g.actor == "user/doctor" for g in glass)
    assert "Patient/p2" in glass[0].patients
    with session_factory(engine)() as session:
        assert verify(session).ok  # denials and break-glass entries keep the chain intact
    monkeypatch.setenv("YILIAN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    listed = CliRunner().invoke(cli, ["users", "break-glass", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["actor"] for r in rows] == ["user/doctor"] * 3
    assert all("unconscious patient" in r["reason"] for r in rows)


@pytest.mark.parametrize("array_limit", [20_000, 1])
def test_large_visible_sets_stay_a_sub_select(
    clients: Clients, monkeypatch: pytest.MonkeyPatch, array_limit: int
) -> None:
    """Past MATERIALISE_LIMIT the visible patients are not inlined as a literal list: one array
    parameter on PostgreSQL up to ARRAY_LIMIT, a sub-select past it (and on SQLite): same
    answers."""
    from yilian.auth import policy

    monkeypatch.setattr(policy, "MATERIALISE_LIMIT", 1)
    monkeypatch.setattr(policy, "ARRAY_LIMIT", array_limit)
    doctor = clients["doctor"]
    assert ids(doctor.get("/fhir/Patient").json()) == {"Patient/p1", "Patient/p6"}
    assert doctor.get("/fhir/Observation?_summary=count").json()["total"] == 2
    bundle = doctor.get("/fhir/Patient?_revinclude=Observation:subject").json()
    assert ids(bundle, "include") == {"Observation/obs-p1", "Observation/obs-p6"}
    specialist = clients["specialist"]
    assert ids(specialist.get("/fhir/Patient").json()) == {"Patient/p3", "Patient/p4"}
