"""A FHIR test client that behaves like production and validates everything the API returns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from yilian.app import create_app
from yilian.fhir.validation import validate_resource

BASE = "http://testserver/fhir"


def check_returned(body: Any) -> None:
    """Every resource the server returns must itself be valid R4 (STYLE.md §8)."""
    if not isinstance(body, dict) or "resourceType" not in body:
        return
    validate_resource(body)
    if body["resourceType"] == "Bundle":
        for entry in body.get("entry", []):
            if isinstance(entry.get("resource"), dict):
                validate_resource(entry["resource"])


class FhirClient:
    def __init__(self, client: TestClient) -> None:
        self.http = client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, url, **kwargs)
        if response.content and response.headers.get("content-type", "").startswith(
            "application/fhir+json"
        ):
            check_returned(response.json())
        return response

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)


@pytest.fixture
def client(engine: Engine) -> Iterator[FhirClient]:
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield FhirClient(http)


def patient(family: str = "王", given: str = "小明", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
        "gender": "male",
        "birthDate": "1980-05-17",
    }
    body.update(extra)
    return body
