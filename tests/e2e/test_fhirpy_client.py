"""An independent FHIR client library (fhirpy) talks to a real running yilian server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fhirpy import SyncFHIRClient
from sqlalchemy import Engine

from tests.fhir.conftest import bearer_token
from yilian.app import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def token(engine: Engine) -> str:
    return bearer_token(engine, "fhirpy-e2e")


@pytest.fixture
def server_url(engine: Engine) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(engine=engine, base_url=base, migrate=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "server did not start"
    yield f"{base}/fhir"
    server.should_exit = True
    thread.join(timeout=10)


def test_create_search_update_transaction(server_url: str, token: str) -> None:
    client = SyncFHIRClient(server_url, authorization=f"Bearer {token}")
    patient = client.resource(
        "Patient",
        identifier=[{"system": "http://example.org/mrn", "value": "MRN-0042"}],
        name=[{"family": "张", "given": ["伟"]}],
        gender="male",
        birthDate="1961-03-09",
    )
    patient.save()
    assert patient.id

    found = client.resources("Patient").search(identifier="http://example.org/mrn|MRN-0042").fetch()
    assert [p.id for p in found] == [patient.id]

    patient["birthDate"] = "1961-03-10"
    patient.save()
    fetched = client.reference("Patient", patient.id).to_resource()
    assert fetched["birthDate"] == "1961-03-10"
    assert fetched["meta"]["versionId"] == "2"

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0d5e1d8a-3a35-4a53-9d3c-2f4b7a6e1c01",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "subject": {"reference": f"Patient/{patient.id}"},
                    "effectiveDateTime": "2026-11-01T09:30:00+08:00",
                    "valueQuantity": {
                        "value": 152,
                        "unit": "mmHg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mm[Hg]",
                    },
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    response = client.execute("", method="post", data=bundle)
    assert response["type"] == "transaction-response"
    observations = (
        client.resources("Observation")
        .search(
            subject=f"Patient/{patient.id}", code="http://loinc.org|8480-6", date__ge="2026-10-01"
        )
        .fetch()
    )
    assert len(observations) == 1
    assert observations[0]["valueQuantity"]["value"] == 152
