"""Fixtures for bulk tests: a runtime on the parametrised engine, Synthea-derived NDJSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.fhir.conftest import FhirClient, auth_header, bearer_token
from yilian.fhir.api import install_error_handlers
from yilian.fhir.api import router as fhir_router
from yilian.fhir.bulk.api import router as bulk_router
from yilian.fhir.runtime import Runtime

SYNTHEA = Path(__file__).resolve().parents[4] / "shared/data/fhir/synthea-r4"


@pytest.fixture
def runtime(engine: Engine) -> Runtime:
    return Runtime(engine, "http://testserver/fhir")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("YILIAN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("YILIAN_IMPORT_WORKERS", "0")
    return tmp_path


@pytest.fixture
def bulk_client(engine: Engine, data_dir: Path) -> Iterator[FhirClient]:
    """The bulk router included before the FHIR router, as the app must do."""
    app = FastAPI()
    app.state.runtime = Runtime(engine, "http://testserver/fhir")
    install_error_handlers(app)
    app.include_router(bulk_router)
    app.include_router(fhir_router)
    headers = auth_header(bearer_token(engine, "test-admin"))
    with TestClient(app, raise_server_exceptions=False, headers=headers) as http:
        yield FhirClient(http)


def synthea_resources(index: int) -> list[dict[str, Any]]:
    """The resources of one Synthea transaction Bundle with urn:uuid references as Type/id."""
    bundle = json.loads((SYNTHEA / f"synthea-r4-{index:02d}.json").read_text())
    mapping = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
    }
    text = json.dumps([e["resource"] for e in bundle["entry"]])
    for urn, ref in mapping.items():
        text = text.replace(f'"{urn}"', f'"{ref}"')
    resources: list[dict[str, Any]] = json.loads(text)
    return resources


def write_ndjson(path: Path, resources: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(r) for r in resources] + list(extra)
    path.write_text("\n".join(lines) + "\n")
    return path
