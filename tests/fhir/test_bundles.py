"""Transaction and batch Bundles: atomic, urn:uuid rewriting, Synthea round trip, $everything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fhir.conftest import FhirClient, patient

SYNTHEA = Path(__file__).resolve().parents[3] / "shared/data/fhir/synthea-r4"


def synthea_bundles() -> list[Path]:
    return sorted(SYNTHEA.glob("synthea-r4-*.json"))


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("meta", "id")}


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def test_transaction_rewrites_urn_uuid_references(client: FhirClient) -> None:
    bundle = transaction(
        {
            "fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
            "resource": patient(),
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059",
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
    )
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "transaction-response"
    locations = [e["response"]["location"] for e in body["entry"]]
    pid = locations[0].split("/")[1]
    encounter = client.get("/" + "fhir/" + "/".join(locations[1].split("/")[:2])).json()
    assert encounter["subject"]["reference"] == f"Patient/{pid}"


def test_transaction_is_all_or_nothing(client: FhirClient) -> None:
    bundle = transaction(
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": patient(gender="bogus"), "request": {"method": "POST", "url": "Patient"}},
    )
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 422
    assert "Bundle.entry[1]" in r.json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient/_history").json()["total"] == 0


def test_batch_entries_succeed_or_fail_alone(client: FhirClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": patient(gender="bogus"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        ],
    }
    body = client.post("/fhir", json=bundle).json()
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses[0].startswith("201") and statuses[1] == "422" and statuses[2] == "404"
    assert client.get("/fhir/Patient/_history").json()["total"] == 1


def test_bad_bundles_are_400(client: FhirClient) -> None:
    assert client.post("/fhir", json={"resourceType": "Patient"}).status_code == 400
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "collection"})
    assert r.status_code == 400 and "Bundle.type" in r.json()["issue"][0]["expression"][0]


@pytest.mark.parametrize(
    "path", [p for p in synthea_bundles() if '"Patient"' in p.read_text()][:3], ids=lambda p: p.name
)
def test_synthea_bundle_round_trips(client: FhirClient, path: Path) -> None:
    bundle = json.loads(path.read_text())
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text[:500]
    by_url = {}
    for sent, got in zip(bundle["entry"], response.json()["entry"], strict=True):
        by_url[sent["fullUrl"]] = got["response"]["location"].split("/_history")[0]
    pid = next(ref for ref in by_url.values() if ref.startswith("Patient/")).split("/")[1]
    everything = client.get(f"/fhir/Patient/{pid}/$everything").json()
    stored_by_ref = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"]
        for e in everything["entry"]
    }
    for sent in bundle["entry"]:
        stored = stored_by_ref[by_url[sent["fullUrl"]]]
        original = sent["resource"]
        # references were rewritten from urn:uuid to Type/id; compare the rest exactly
        text = json.dumps(without_meta(original))
        for urn, ref in by_url.items():
            text = text.replace(f'"{urn}"', f'"{ref}"')
        assert without_meta(stored) == json.loads(text)


def test_everything_returns_all_of_a_synthea_patient(client: FhirClient) -> None:
    path = next(p for p in synthea_bundles() if '"Patient"' in p.read_text())
    bundle = json.loads(path.read_text())
    response = client.post("/fhir", json=bundle).json()
    locations = [e["response"]["location"].split("/_history")[0] for e in response["entry"]]
    pid = next(loc for loc in locations if loc.startswith("Patient/")).split("/")[1]
    everything = client.get(f"/fhir/Patient/{pid}/$everything").json()
    returned = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in everything["entry"]
    }
    assert set(locations) <= returned
