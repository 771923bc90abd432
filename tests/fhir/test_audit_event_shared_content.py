"""ADR 0018: an AuditEvent the chain projects into the store is written once — its version row
shares the resource row's content — and vread, history and later changes see the same content."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from tests.fhir.conftest import FhirClient, patient
from yilian.audit.verify import verify
from yilian.db import session_factory
from yilian.fhir.models import ResourceRow, ResourceVersionRow
from yilian.fhir.store import ResourceStore, StoreOptions


def _version_contents(engine: Engine, res_id: str) -> dict[int, Any]:
    with session_factory(engine)() as session:
        rows = session.execute(
            select(ResourceVersionRow.version_id, ResourceVersionRow.content).where(
                ResourceVersionRow.res_type == "AuditEvent", ResourceVersionRow.res_id == res_id
            )
        )
        return {version: content for version, content in rows}


def _everything_event(client: FhirClient) -> tuple[str, dict[str, Any]]:
    pid = client.post("/fhir/Patient", json=patient()).json()["id"]
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    client.post("/fhir/Observation", json=obs)
    assert client.get(f"/fhir/Patient/{pid}/$everything").status_code == 200
    events = client.get("/fhir/AuditEvent", params={"patient": f"Patient/{pid}"}).json()
    ops = [
        e["resource"]
        for e in events["entry"]
        if any(s.get("code") == "operation" for s in e["resource"]["subtype"])
    ]
    assert len(ops) == 1
    return str(ops[0]["id"]), ops[0]


def test_the_version_row_shares_the_content_and_reads_agree(
    client: FhirClient, engine: Engine
) -> None:
    res_id, event = _everything_event(client)
    assert _version_contents(engine, res_id) == {1: None}  # no second copy
    assert client.get(f"/fhir/AuditEvent/{res_id}").json() == event
    assert client.get(f"/fhir/AuditEvent/{res_id}/_history/1").json() == event
    history = client.get(f"/fhir/AuditEvent/{res_id}/_history").json()
    assert [e["resource"] for e in history["entry"]] == [event]
    assert history["entry"][0]["request"]["method"] == "POST"
    typed = client.get("/fhir/AuditEvent/_history", params={"_count": "1000"}).json()
    by_id = {e["resource"]["id"]: e["resource"] for e in typed["entry"] if "resource" in e}
    assert by_id[res_id] == event
    # every entry's content is there: none of the shared versions reads as a deletion
    assert all("resource" in e for e in typed["entry"])
    with session_factory(engine)() as session:
        assert verify(session).ok


def test_a_change_gives_the_old_version_its_own_copy(client: FhirClient, engine: Engine) -> None:
    res_id, event = _everything_event(client)
    changed = {k: v for k, v in event.items() if k != "meta"} | {"outcomeDesc": "annotated"}
    assert client.put(f"/fhir/AuditEvent/{res_id}", json=changed).status_code == 200
    contents = _version_contents(engine, res_id)
    assert contents[1] == event and contents[2]["outcomeDesc"] == "annotated"
    assert client.get(f"/fhir/AuditEvent/{res_id}/_history/1").json() == event
    assert client.delete(f"/fhir/AuditEvent/{res_id}").status_code == 204
    assert client.get(f"/fhir/AuditEvent/{res_id}/_history/1").json() == event
    assert client.get(f"/fhir/AuditEvent/{res_id}/_history/3").status_code == 410


def test_created_and_changed_in_one_unit_of_work(engine: Engine) -> None:
    """The version row still in the write buffer gets the copy (nothing flushed yet)."""
    event = {"resourceType": "AuditEvent", "id": "audit-999", "action": "R"}
    with session_factory(engine)() as session, session.begin():
        store = ResourceStore(session, StoreOptions(validate=False))
        store.create(event, res_id="audit-999", fresh_id=True, shared_content=True)
        store.update("AuditEvent", "audit-999", {**event, "outcome": "0"})
        store.flush()
    contents = _version_contents(engine, "audit-999")
    assert contents[1]["action"] == "R" and "outcome" not in contents[1]
    assert contents[2]["outcome"] == "0"


def test_only_audit_events_share_and_a_lost_content_is_an_error(engine: Engine) -> None:
    with session_factory(engine)() as session, session.begin():
        store = ResourceStore(session, StoreOptions(validate=False))
        with pytest.raises(ValueError, match="cannot share"):
            store.create(patient(), shared_content=True)
        event = {"resourceType": "AuditEvent", "id": "audit-7", "action": "R"}
        created = store.create(event, res_id="audit-7", fresh_id=True, shared_content=True)
        store.flush()
        # a current row moved on behind the store's back: the shared version has no content
        session.execute(
            update(ResourceRow)
            .where(ResourceRow.res_id == "audit-7")
            .values(version_id=created.version_id + 1)
        )
        with pytest.raises(RuntimeError, match="share content"):
            store.vread("AuditEvent", "audit-7", 1)
