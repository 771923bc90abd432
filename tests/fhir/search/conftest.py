"""Helpers for search tests: write resources through the store, run searches in fresh sessions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine

from yilian.db import session_factory, unit_of_work
from yilian.fhir.search import get_page, search
from yilian.fhir.store import ResourceStore

BASE = "http://example.org/fhir"


@dataclass
class Db:
    engine: Engine

    def create(self, resource: dict[str, Any], res_id: str | None = None) -> str:
        with unit_of_work(session_factory(self.engine)) as session:
            store = ResourceStore(session)
            created = store.create(resource, res_id=res_id)
            store.flush()  # the store batches index rows until flush (or the request edge)
            return str(created.resource["id"])

    def put(self, resource: dict[str, Any]) -> None:
        with unit_of_work(session_factory(self.engine)) as session:
            store = ResourceStore(session)
            store.update(resource["resourceType"], resource["id"], resource)
            store.flush()

    def delete(self, res_type: str, res_id: str) -> None:
        with unit_of_work(session_factory(self.engine)) as session:
            store = ResourceStore(session)
            store.delete(res_type, res_id)
            store.flush()

    def search(self, res_type: str | None, query: str | list[tuple[str, str]]) -> dict[str, Any]:
        params = query if isinstance(query, list) else _split(query)
        with unit_of_work(session_factory(self.engine)) as session:
            return search(session, res_type, params, base_url=BASE)

    def page(self, search_id: str, offset: int, count: int) -> dict[str, Any]:
        with unit_of_work(session_factory(self.engine)) as session:
            return get_page(session, search_id, offset, count, base_url=BASE)

    def ids(self, res_type: str | None, query: str | list[tuple[str, str]]) -> list[str]:
        """Ids of the matches, in bundle order."""
        return match_ids(self.search(res_type, query))


def _split(query: str) -> list[tuple[str, str]]:
    """Split ``a=1&b=2`` keeping repeats; values here are written unencoded for readability."""
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def match_ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def include_refs(bundle: dict[str, Any]) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "include"
    }


@pytest.fixture
def db(engine: Engine) -> Iterator[Db]:
    yield Db(engine)
