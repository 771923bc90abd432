"""Conditional create/update/delete and conditional references in transactions."""

from __future__ import annotations

from typing import Any

from tests.fhir.conftest import FhirClient, patient

RESIDENT = "http://yilian.health/fhir/sid/cn-resident-id"
ID_NUMBER = "11010519491231002X"


def resident(**extra: Any) -> dict[str, Any]:
    return patient(identifier=[{"system": RESIDENT, "value": ID_NUMBER}], **extra)


def test_if_none_exist_creates_once(client: FhirClient) -> None:
    criteria = {"If-None-Exist": f"identifier={RESIDENT}|{ID_NUMBER}"}
    first = client.post("/fhir/Patient", json=resident(), headers=criteria)
    again = client.post("/fhir/Patient", json=resident(), headers=criteria)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert client.get("/fhir/Patient?_summary=count").json()["total"] == 1


def test_if_none_exist_with_several_matches_is_412(client: FhirClient) -> None:
    client.post("/fhir/Patient", json=patient(family="李"))
    client.post("/fhir/Patient", json=patient(family="李"))
    # header values are ASCII: clients percent-encode the query, as in a URL
    r = client.post("/fhir/Patient", json=patient(), headers={"If-None-Exist": "family=%E6%9D%8E"})
    assert r.status_code == 412


def test_conditional_update_creates_then_updates(client: FhirClient) -> None:
    url = f"/fhir/Patient?identifier={RESIDENT}|{ID_NUMBER}"
    created = client.put(url, json=resident())
    assert created.status_code == 201
    updated = client.put(url, json=resident(birthDate="1949-12-31"))
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["meta"]["versionId"] == "2"


def test_conditional_delete(client: FhirClient) -> None:
    pid = client.post("/fhir/Patient", json=resident()).json()["id"]
    assert client.delete(f"/fhir/Patient?identifier={RESIDENT}|{ID_NUMBER}").status_code == 204
    assert client.get(f"/fhir/Patient/{pid}").status_code == 410


def test_conditional_without_criteria_is_400(client: FhirClient) -> None:
    r = client.put("/fhir/Patient", json=resident())
    assert r.status_code == 400
    assert "conditional-criteria" in r.json()["issue"][0]["diagnostics"]


def test_transaction_resolves_conditional_references_and_if_none_exist(
    client: FhirClient,
) -> None:
    pid = client.post("/fhir/Patient", json=resident()).json()["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:1b0e2c1d-52a4-4c7c-9a5e-0d2d8c6a0001",
                "resource": {
                    "resourceType": "Organization",
                    "name": "新华街道社区卫生服务中心",
                    "identifier": [{"system": "urn:test:org", "value": "xinhua"}],
                },
                "request": {
                    "method": "POST",
                    "url": "Organization",
                    "ifNoneExist": "identifier=urn:test:org|xinhua",
                },
            },
            {
                "resource": {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                    },
                    "subject": {"reference": f"Patient?identifier={RESIDENT}|{ID_NUMBER}"},
                    "serviceProvider": {
                        "reference": "urn:uuid:1b0e2c1d-52a4-4c7c-9a5e-0d2d8c6a0001"
                    },
                },
                "request": {"method": "POST", "url": "Encounter"},
            },
        ],
    }
    for _ in range(2):
        response = client.post("/fhir", json=bundle)
        assert response.status_code == 200, response.text
    assert client.get("/fhir/Organization?_summary=count").json()["total"] == 1
    encounters = client.get(f"/fhir/Encounter?subject=Patient/{pid}").json()
    assert encounters["total"] == 2
    org_ref = encounters["entry"][0]["resource"]["serviceProvider"]["reference"]
    assert org_ref.startswith("Organization/")


def test_conditional_reference_matching_nothing_fails_the_transaction(client: FhirClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "BP"},
                    "subject": {"reference": "Patient?identifier=urn:x|nobody"},
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 400
    assert "conditional-reference-single-match" in r.json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/Observation?_summary=count").json()["total"] == 0


def test_history_pages_with_next_links(client: FhirClient) -> None:
    pid = client.post("/fhir/Patient", json=patient()).json()["id"]
    for n in range(4):
        client.put(f"/fhir/Patient/{pid}", json=patient(given=f"名{n}") | {"id": pid})
    first = client.get(f"/fhir/Patient/{pid}/_history?_count=2").json()
    assert first["total"] == 5 and len(first["entry"]) == 2
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(next_url.replace("http://testserver", "")).json()
    assert [e["response"]["etag"] for e in second["entry"]] == ['W/"3"', 'W/"2"']
