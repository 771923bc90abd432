"""A FHIR test client that behaves like production and validates everything the API returns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from yilian.app import create_app
from yilian.auth import Role
from yilian.auth.service import create_user, find_user, issue_token
from yilian.db import session_factory, unit_of_work
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


def bearer_token(engine: Engine, username: str, role: Role = Role.ADMIN, **links: str) -> str:
    """A user of ``role`` (linked to ``links``: practitioner_id=…) and a bearer token for it."""
    with unit_of_work(session_factory(engine)) as session:
        user = find_user(session, username) or create_user(session, username, role, **links)
        return issue_token(session, user).value


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(engine: Engine) -> Iterator[FhirClient]:
    """Authenticated as a system administrator (``test-admin``, role admin, scopes
    ``system/*.* user/*.*``) — the API answers 401 without a credential."""
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    headers = auth_header(bearer_token(engine, "test-admin"))
    with TestClient(app, raise_server_exceptions=False, headers=headers) as http:
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
