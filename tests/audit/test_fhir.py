"""Entries as FHIR R4 AuditEvents, checked with fhirclient's R4 model in strict mode."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import pytest
from fhirclient.models.auditevent import AuditEvent

from yilian.audit import AuditRecord
from yilian.audit.canonical import GENESIS_HASH
from yilian.audit.fhir import (
    CHAIN_EXTENSION_URL,
    EVENT_CODE_SYSTEM,
    indexed_part,
    to_audit_event,
)


def _record(**changes: Any) -> AuditRecord:
    fields: dict[str, Any] = {
        "seq": 42,
        "recorded": datetime(2025, 6, 1, 2, 3, 4, 567890),
        "actor": "Practitioner/doc-1",
        "actor_kind": "user",
        "actor_role": "family doctor",
        "action": "R",
        "event": "read",
        "resources": ["Observation/o1/_history/3", "Patient/p1"],
        "patients": ["Patient/p1", "Patient/p2"],
        "purpose": "TREAT",
        "outcome": 0,
        "outcome_desc": None,
        "source_address": "10.1.2.3",
        "request_id": "req-9",
        "query": None,
        "prev_hash": GENESIS_HASH,
        "hash": "ab" * 32,
    }
    fields.update(changes)
    return AuditRecord(**fields)


def _valid(event: dict[str, Any]) -> dict[str, Any]:
    parsed = AuditEvent(event, strict=True)
    assert parsed.as_json()["id"] == event["id"]
    return event


def test_read_event_maps_every_field() -> None:
    event = _valid(to_audit_event(_record()))
    assert event["id"] == "audit-42"
    assert event["type"]["code"] == "rest"
    assert event["subtype"] == [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}
    ]
    assert (event["action"], event["outcome"]) == ("R", "0")
    assert event["recorded"] == "2025-06-01T02:03:04.567890Z"
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    agent = event["agent"][0]
    assert agent["who"] == {"reference": "Practitioner/doc-1"}
    assert agent["requestor"] is True
    assert agent["role"] == [{"text": "family doctor"}]
    assert agent["network"] == {"address": "10.1.2.3", "type": "2"}
    whats = [e["what"]["reference"] for e in event["entity"]]
    assert whats == ["Observation/o1/_history/3", "Patient/p1", "Patient/p2"]
    assert [e["role"]["code"] for e in event["entity"]] == ["4", "1", "1"]
    chain = {x["url"]: x for x in event["extension"]}[CHAIN_EXTENSION_URL]["extension"]
    assert chain == [
        {"url": "seq", "valueInteger": 42},
        {"url": "prevHash", "valueString": GENESIS_HASH},
        {"url": "hash", "valueString": "ab" * 32},
    ]


def test_search_event_carries_its_query_base64_encoded() -> None:
    query = "Observation?patient=Patient/p1&code=http://loinc.org|8480-6&_count=50"
    event = _valid(to_audit_event(_record(event="search", action="E", query=query)))
    query_entity = event["entity"][-1]
    assert query_entity["role"]["code"] == "24"
    assert base64.b64decode(query_entity["query"]).decode("utf-8") == query


def _whats(event: dict[str, Any]) -> list[str | None]:
    return [e.get("what", {}).get("reference") for e in event.get("entity", [])]


@pytest.mark.parametrize(
    ("event", "action"), [("search", "E"), ("operation", "E"), ("history", "R")]
)
def test_a_result_set_read_indexes_its_patients_and_query_not_each_result(
    event: str, action: str
) -> None:
    """ADR 0011: the AuditEvent names every returned resource; its index only the patients."""
    resources = ["Patient/p1", *(f"Observation/o{i}" for i in range(5)), "Practitioner/d"]
    full = to_audit_event(
        _record(event=event, action=action, resources=resources, query="Observation?x=1")
    )
    assert _whats(full) == [*resources, "Patient/p2", None]
    part = indexed_part(full)
    assert _whats(part) == ["Patient/p1", "Patient/p2", None]  # None: the query entity
    assert part["entity"][-1]["role"]["code"] == "24"
    assert {k: v for k, v in part.items() if k != "entity"} == {
        k: v for k, v in full.items() if k != "entity"
    }
    assert len(full["entity"]) == len(resources) + 2  # the stored event is unchanged


@pytest.mark.parametrize(
    "changes",
    [
        {},  # a read of one resource: no query
        {"event": "import", "action": "C", "query": "bulk.ndjson"},  # a write with a query
        {"event": "transaction", "action": "E"},  # writes, no query
    ],
)
def test_single_reads_and_writes_index_every_entity(changes: dict[str, Any]) -> None:
    event = to_audit_event(_record(**changes))
    assert indexed_part(event) is event


@pytest.mark.parametrize("kind", ["export", "import"])
def test_bulk_events_are_operations_with_the_finer_event_kept(kind: str) -> None:
    event = _valid(to_audit_event(_record(event=kind, action="E")))
    assert [c["code"] for c in event["subtype"]] == ["operation", kind]
    assert event["subtype"][1]["system"] == EVENT_CODE_SYSTEM


def test_system_actor_failure_without_resources() -> None:
    record = _record(
        actor="nightly-indicators",
        actor_kind="system",
        actor_role=None,
        source_address="ingest.example.cn",
        request_id=None,
        resources=[],
        patients=[],
        outcome=8,
        outcome_desc="Patient/p9: not found",
        purpose="HOPERAT",
    )
    event = _valid(to_audit_event(record))
    agent = event["agent"][0]
    assert agent["who"]["identifier"]["value"] == "nightly-indicators"
    assert agent["type"]["coding"][0]["code"] == "110150"
    assert agent["network"]["type"] == "1"
    assert (event["outcome"], event["outcomeDesc"]) == ("8", "Patient/p9: not found")
    assert "entity" not in event
    assert event["purposeOfEvent"][0]["coding"][0]["display"] == "healthcare operations"
