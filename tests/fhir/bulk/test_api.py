"""The Bulk Data HTTP flow: kick-off, polling, manifest, download, delete; ``$import``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.fhir.bulk.conftest import synthea_resources, write_ndjson
from tests.fhir.conftest import FhirClient
from yilian.fhir.bulk.importer import Loader, LoadOptions
from yilian.fhir.runtime import RequestContext, Runtime

ASYNC = {"Prefer": "respond-async"}


def poll(client: FhirClient, url: str) -> httpx.Response:
    """Poll a status URL until it stops answering 202 (bounded, as a client would)."""
    for _ in range(600):
        response = client.get(url)
        if response.status_code != 202:
            return response
        assert "X-Progress" in response.headers
        time.sleep(0.05)
    raise AssertionError(f"{url} still running")


def kick_off(client: FhirClient, url: str) -> str:
    response = client.get(url, headers=ASYNC)
    assert response.status_code == 202, response.text
    return response.headers["Content-Location"]


def load(runtime: Runtime, tmp_path: Path, resources: list[dict[str, Any]]) -> None:
    path = write_ndjson(tmp_path / "seed.ndjson", resources)
    Loader(runtime, RequestContext.system(), LoadOptions(workers=0)).load([path])


def without_stamp(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without the store's meta.versionId/lastUpdated (tags and profiles kept)."""
    meta = {
        k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")
    }
    rest = {k: v for k, v in resource.items() if k != "meta"}
    return {**rest, "meta": meta} if meta else rest


def read_ndjson(client: FhirClient, url: str) -> list[dict[str, Any]]:
    response = client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


@pytest.mark.parametrize("url", ["/fhir/$export", "/fhir/Patient/$export"])
def test_kick_off_requires_prefer_respond_async(bulk_client: FhirClient, url: str) -> None:
    response = bulk_client.get(url)
    assert response.status_code == 400
    assert "respond-async" in response.json()["issue"][0]["diagnostics"]


def test_unknown_type_and_bad_since_are_rejected(bulk_client: FhirClient) -> None:
    bad_type = bulk_client.get("/fhir/$export?_type=Patient,Nonsense", headers=ASYNC)
    assert bad_type.status_code == 400 and "Nonsense" in bad_type.text
    bad_since = bulk_client.get("/fhir/$export?_since=yesterday", headers=ASYNC)
    assert bad_since.status_code == 400 and "_since" in bad_since.text


def test_system_export_round_trips_into_a_fresh_database(
    bulk_client: FhirClient,
    runtime: Runtime,
    engine: Engine,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    resources = synthea_resources(5)
    load(runtime, tmp_path, resources)
    status = kick_off(bulk_client, "/fhir/$export?_type=Patient,Observation,Encounter")
    done = poll(bulk_client, status.removeprefix("http://testserver"))
    assert done.status_code == 200
    manifest = done.json()
    assert manifest["requiresAccessToken"] is False and manifest["error"] == []
    assert manifest["transactionTime"].endswith("Z")
    assert {o["type"] for o in manifest["output"]} == {"Patient", "Observation", "Encounter"}
    exported = {o["type"]: read_ndjson(bulk_client, o["url"]) for o in manifest["output"]}
    for item in manifest["output"]:
        assert item["count"] == len(exported[item["type"]])
    expected = {
        (r["resourceType"], r["id"]): r
        for r in resources
        if r["resourceType"] in ("Patient", "Observation", "Encounter")
    }
    got = {(r["resourceType"], r["id"]): r for rows in exported.values() for r in rows}
    assert got.keys() == expected.keys()
    # Round trip: the exported files load into an emptied database and give the same resources.
    from tests.conftest import empty_all_tables

    empty_all_tables(engine)
    files = [data_dir / "exports" / status.rsplit("/", 1)[1] / f"{t}.ndjson" for t in exported]
    report = Loader(runtime, RequestContext.system(), LoadOptions(workers=0)).load(files)
    assert report.loaded == len(expected) and report.rejected == 0
    with runtime.transaction(RequestContext.system()) as service:
        for (res_type, res_id), original in expected.items():
            stored = service.store.read(res_type, res_id, audit=False)
            assert without_stamp(stored) == without_stamp(original)


def test_patient_export_and_delete(
    bulk_client: FhirClient, runtime: Runtime, tmp_path: Path, data_dir: Path
) -> None:
    resources = synthea_resources(6)
    other = {"resourceType": "Patient", "id": "someone-else", "gender": "female"}
    load(runtime, tmp_path, [*resources, other])
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    status = kick_off(bulk_client, f"/fhir/Patient/{patient['id']}/$export")
    manifest = poll(bulk_client, status.removeprefix("http://testserver")).json()
    by_type = {o["type"]: o for o in manifest["output"]}
    assert "Practitioner" not in by_type and "Organization" not in by_type  # not compartment
    patients = read_ndjson(bulk_client, by_type["Patient"]["url"])
    assert [p["id"] for p in patients] == [patient["id"]]
    observations = read_ndjson(bulk_client, by_type["Observation"]["url"])
    assert all(o["subject"]["reference"] == f"Patient/{patient['id']}" for o in observations)
    assert len(observations) == sum(1 for r in resources if r["resourceType"] == "Observation")
    everyone = kick_off(bulk_client, "/fhir/Patient/$export?_type=Patient")
    manifest = poll(bulk_client, everyone.removeprefix("http://testserver")).json()
    assert manifest["output"][0]["count"] == 2
    # DELETE removes the job and its files; the status URL is then unknown.
    path = status.removeprefix("http://testserver")
    assert bulk_client.delete(path).status_code == 202
    assert bulk_client.get(path).status_code == 404
    assert not (data_dir / "exports" / path.rsplit("/", 1)[1]).exists()


def test_since_excludes_older_resources(
    bulk_client: FhirClient, runtime: Runtime, tmp_path: Path
) -> None:
    load(runtime, tmp_path, [{"resourceType": "Patient", "id": "old"}])
    cut = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1)) + "Z"
    status = kick_off(bulk_client, f"/fhir/$export?_since={cut}")
    assert poll(bulk_client, status.removeprefix("http://testserver")).json()["output"] == []


def import_parameters(*inputs: tuple[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "inputFormat", "valueString": "application/fhir+ndjson"},
            *(
                {
                    "name": "input",
                    "part": [{"name": "type", "valueCode": t}, {"name": "url", "valueUrl": u}],
                }
                for t, u in inputs
            ),
        ],
    }


def test_import_flow_with_error_file(bulk_client: FhirClient, data_dir: Path) -> None:
    write_ndjson(
        data_dir / "patients.ndjson",
        [
            {"resourceType": "Patient", "id": "imp1"},
            {"resourceType": "Observation", "id": "x", "status": "final", "code": {}},
        ],
        ("{broken",),
    )
    body = import_parameters(("Patient", "patients.ndjson"))
    assert bulk_client.post("/fhir/$import", json=body).status_code == 400  # no Prefer
    response = bulk_client.post("/fhir/$import", json=body, headers=ASYNC)
    assert response.status_code == 202, response.text
    done = poll(bulk_client, response.headers["Content-Location"].removeprefix("http://testserver"))
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["loaded"] == 1 and result["rejected"] == 2
    assert result["output"] == [{"type": "Patient", "count": 1}]
    outcomes = read_ndjson(bulk_client, result["error"][0]["url"])
    messages = [o["issue"][0]["diagnostics"] for o in outcomes]
    assert "patients.ndjson:2" in messages[0] and "import-input-type" in messages[0]
    assert "patients.ndjson:3" in messages[1] and "json-syntax" in messages[1]
    assert bulk_client.get("/fhir/Patient/imp1").status_code == 200


@pytest.mark.parametrize(
    "url",
    ["https://example.org/p.ndjson", "file:///etc/passwd", "../outside.ndjson", "missing.ndjson"],
)
def test_import_reads_only_files_in_the_data_directory(bulk_client: FhirClient, url: str) -> None:
    response = bulk_client.post(
        "/fhir/$import", json=import_parameters(("Patient", url)), headers=ASYNC
    )
    assert response.status_code == 400
    assert "import-input-url" in response.text
