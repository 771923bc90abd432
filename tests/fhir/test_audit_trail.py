"""Every access through the FHIR API lands in the hash chain, also as a searchable AuditEvent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, func, select

from tests.fhir.conftest import FhirClient, patient
from yilian.audit.models import AuditEntryRow
from yilian.audit.verify import verify
from yilian.db import session_factory
from yilian.fhir.runtime import RequestContext, Runtime


def _entries(engine: Engine) -> list[AuditEntryRow]:
    with session_factory(engine)() as session:
        return list(session.execute(select(AuditEntryRow).order_by(AuditEntryRow.seq)).scalars())


def test_each_access_is_one_entry_with_who_what_why(client: FhirClient, engine: Engine) -> None:
    headers = {"X-Purpose-Of-Use": "TREAT"}
    pid = client.post("/fhir/Patient", json=patient(), headers=headers).json()["id"]
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 150, "unit": "mmHg"},
    }
    client.post("/fhir/Observation", json=obs, headers=headers)
    client.get(f"/fhir/Patient/{pid}", headers=headers)
    entries = _entries(engine)
    assert [e.event for e in entries] == ["create", "create", "read"]
    # the actor is the authenticated principal (the client fixture's admin), not a header
    assert all(e.actor == "user/test-admin" and e.purpose == "TREAT" for e in entries)
    assert all(e.actor_role == "admin" for e in entries)
    assert entries[1].patients == [f"Patient/{pid}"]
    assert entries[2].resources == [f"Patient/{pid}"]
    with session_factory(engine)() as session:
        assert verify(session).ok
    event = client.get("/fhir/AuditEvent/audit-3").json()
    assert event["resourceType"] == "AuditEvent" and event["action"] == "R"


def test_failed_write_leaves_no_entry(client: FhirClient, engine: Engine) -> None:
    assert client.post("/fhir/Patient", json=patient(gender="x")).status_code == 422
    assert _entries(engine) == []


def test_unknown_purpose_is_rejected(client: FhirClient) -> None:
    r = client.post("/fhir/Patient", json=patient(), headers={"X-Purpose-Of-Use": "CURIOSITY"})
    assert r.status_code == 400
    assert "purpose-of-use" in r.json()["issue"][0]["diagnostics"]


def test_concurrent_writers_keep_one_unbroken_chain(engine: Engine) -> None:
    runtime = Runtime(engine, "http://testserver/fhir")
    ctx = RequestContext.system("system/test")

    def write(n: int) -> None:
        for _ in range(6):
            with runtime.transaction(ctx) as service:
                service.store.create(patient(given=f"并发{n}"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(8)))
    with session_factory(engine)() as session:
        seqs = list(
            session.execute(select(AuditEntryRow.seq).order_by(AuditEntryRow.seq)).scalars()
        )
        assert seqs == list(range(1, 49))
        report = verify(session)
        assert report.ok and report.checked == 48
        count = session.execute(select(func.count()).select_from(AuditEntryRow)).scalar_one()
        assert count == 48


def test_audit_event_search_finds_a_search_by_patient_not_by_each_result(
    client: FhirClient, engine: Engine
) -> None:
    """ADR 0011: a search's AuditEvent names every result (resource and chain entry), but its
    index holds the patients and the query; ``entity=`` finds a resource's own interactions."""
    pid = client.post("/fhir/Patient", json=patient()).json()["id"]
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    oid = client.post("/fhir/Observation", json=obs).json()["id"]
    client.get("/fhir/Observation", params={"subject": f"Patient/{pid}"})  # entry 3
    client.get(f"/fhir/Patient/{pid}/$everything")  # entry 4
    client.get(f"/fhir/Observation/{oid}")  # entry 5

    def found(**params: str) -> list[str]:
        bundle = client.get("/fhir/AuditEvent", params={**params, "_sort": "_id"}).json()
        return sorted(e["resource"]["id"] for e in bundle.get("entry", []))

    assert found(patient=f"Patient/{pid}") == [f"audit-{n}" for n in range(1, 6)]
    assert found(entity=f"Patient/{pid}") == [f"audit-{n}" for n in range(1, 6)]
    assert found(entity=f"Observation/{oid}") == ["audit-2", "audit-5"]  # create, read
    search_event = client.get("/fhir/AuditEvent/audit-3").json()
    whats = {e.get("what", {}).get("reference") for e in search_event["entity"]}
    assert f"Observation/{oid}" in whats  # the resource still names what was returned
    entries = _entries(engine)
    assert f"Observation/{oid}" in entries[2].resources and entries[2].event == "search"
    assert f"Observation/{oid}" in entries[3].resources and entries[3].event == "operation"
    with session_factory(engine)() as session:
        assert verify(session).ok
