"""CRUD, versioning and history through the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine

from tests.fhir.conftest import FhirClient, patient
from yilian.fhir.errors import FhirError
from yilian.fhir.runtime import RequestContext, Runtime


def test_create_assigns_id_and_headers(client: FhirClient) -> None:
    r = client.post("/fhir/Patient", json=patient())
    assert r.status_code == 201
    body = r.json()
    assert body["id"] and body["meta"]["versionId"] == "1"
    assert r.headers["ETag"] == 'W/"1"'
    assert r.headers["Location"].endswith(f"/Patient/{body['id']}/_history/1")
    assert "GMT" in r.headers["Last-Modified"]


def test_read_update_vread_delete_history(client: FhirClient) -> None:
    pid = client.post("/fhir/Patient", json=patient()).json()["id"]
    first = client.get(f"/fhir/Patient/{pid}")
    assert first.status_code == 200 and first.json()["name"][0]["family"] == "王"
    changed = patient(family="李") | {"id": pid}
    r = client.put(f"/fhir/Patient/{pid}", json=changed, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2"
    assert client.get(f"/fhir/Patient/{pid}/_history/1").json()["name"][0]["family"] == "王"
    assert client.get(f"/fhir/Patient/{pid}/_history/2").json()["name"][0]["family"] == "李"
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204
    assert client.get(f"/fhir/Patient/{pid}").status_code == 410
    history = client.get(f"/fhir/Patient/{pid}/_history").json()
    assert history["type"] == "history" and history["total"] == 3
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT", "POST"]
    assert client.get(f"/fhir/Patient/{pid}/_history/3").status_code == 410


def test_version_conflict_is_412(client: FhirClient) -> None:
    pid = client.post("/fhir/Patient", json=patient()).json()["id"]
    client.put(f"/fhir/Patient/{pid}", json=patient() | {"id": pid})
    stale = client.put(
        f"/fhir/Patient/{pid}", json=patient() | {"id": pid}, headers={"If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    outcome = stale.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "if-match-version" in outcome["issue"][0]["diagnostics"]


def test_update_creates_with_client_id(client: FhirClient) -> None:
    r = client.put("/fhir/Patient/chc-xinhua-0001", json=patient() | {"id": "chc-xinhua-0001"})
    assert r.status_code == 201
    assert client.get("/fhir/Patient/chc-xinhua-0001").json()["meta"]["versionId"] == "1"


def test_unknown_is_404_and_bad_json_is_400(client: FhirClient) -> None:
    assert client.get("/fhir/Patient/nope").status_code == 404
    assert client.get("/fhir/NotAType/1").status_code == 404
    r = client.post(
        "/fhir/Patient", content=b"{not json", headers={"Content-Type": "application/fhir+json"}
    )
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"


def test_type_mismatch_and_invalid_resource_write_nothing(client: FhirClient) -> None:
    r = client.post("/fhir/Patient", json={"resourceType": "Observation", "status": "final"})
    assert r.status_code == 400
    bad = client.post("/fhir/Patient", json=patient(gender="m"))
    assert bad.status_code == 422
    assert bad.json()["issue"][0]["expression"] == ["Patient.gender"]
    assert client.get("/fhir/Patient/_history").json()["total"] == 0


def test_type_and_system_history(client: FhirClient) -> None:
    client.post("/fhir/Patient", json=patient())
    client.post("/fhir/Organization", json={"resourceType": "Organization", "name": "新华社区"})
    assert client.get("/fhir/Patient/_history").json()["total"] == 1
    assert client.get("/fhir/_history").json()["total"] >= 2


def test_metadata_is_a_truthful_capability_statement(client: FhirClient) -> None:
    cs = client.get("/fhir/metadata").json()
    assert cs["fhirVersion"] == "4.0.1"
    patient_entry = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Patient")
    names = {p["name"] for p in patient_entry["searchParam"]}
    assert {"identifier", "name", "birthdate", "_id", "_lastUpdated"} <= names
    assert not any(p["type"] == "composite" for p in patient_entry["searchParam"])


def test_concurrent_if_match_updates_have_one_winner(engine: Engine) -> None:
    runtime = Runtime(engine, "http://testserver/fhir")
    ctx = RequestContext.system("system/test")
    with runtime.transaction(ctx) as service:
        pid = service.store.create(patient()).resource["id"]

    def update(n: int) -> int:
        try:
            with runtime.transaction(ctx) as service:
                body = patient(given=f"并发{n}") | {"id": pid}
                service.store.update("Patient", pid, body, if_match=1)
            return 200
        except FhirError as error:
            return error.status

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(update, range(8)))
    assert sorted(statuses) == [200] + [412] * 7
    with runtime.transaction(ctx) as service:
        assert service.store.read("Patient", pid)["meta"]["versionId"] == "2"
