"""``$everything`` membership and the store's COPY path for large index batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.fhir.conftest import FhirClient, patient
from yilian.fhir.models import DateIndex, ReferenceIndex, ResourceRow, StringIndex
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.fhir.store import COPY_MIN_ROWS, insert_rows


def observation(**refs: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        **refs,
    }


def test_everything_keeps_out_a_resource_that_names_the_patient_outside_the_compartment(
    client: FhirClient,
) -> None:
    """Observation.focus is no compartment parameter (R4 CompartmentDefinition/patient lists
    subject and performer): an observation *about* another patient that merely focuses on this
    one is not this patient's record, and must not be returned as a match."""
    pid = client.post("/fhir/Patient", json=patient()).json()["id"]
    other = client.post("/fhir/Patient", json=patient(given="小红")).json()["id"]
    own = client.post(
        "/fhir/Observation", json=observation(subject={"reference": f"Patient/{pid}"})
    ).json()["id"]
    focused = client.post(
        "/fhir/Observation",
        json=observation(
            subject={"reference": f"Patient/{other}"}, focus=[{"reference": f"Patient/{pid}"}]
        ),
    ).json()["id"]
    bundle = client.get(f"/fhir/Patient/{pid}/$everything").json()
    matches = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
        if e["search"]["mode"] == "match"
    }
    assert f"Observation/{own}" in matches
    assert f"Patient/{pid}" in matches
    assert f"Observation/{focused}" not in matches
    assert bundle["total"] == len(matches)


def test_everything_leaves_out_the_patients_audit_events(client: FhirClient) -> None:
    """AuditEvents are in R4's patient compartment, but not the patient's record (ADR 0011):
    ``$everything`` returns the same resources however often the record was looked at, while
    ``AuditEvent?patient=`` still finds every access (here as the admin it is reserved for)."""
    pid = client.post("/fhir/Patient", json=patient()).json()["id"]
    client.post("/fhir/Observation", json=observation(subject={"reference": f"Patient/{pid}"}))
    first = client.get(f"/fhir/Patient/{pid}/$everything").json()
    client.get(f"/fhir/Patient/{pid}")
    second = client.get(f"/fhir/Patient/{pid}/$everything").json()
    returned = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in second["entry"]]
    assert returned == [
        f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in first["entry"]
    ]
    assert not [r for r in returned if r.startswith("AuditEvent/")]
    assert len(returned) == 2 and second["total"] == 2
    accesses = client.get("/fhir/AuditEvent", params={"patient": f"Patient/{pid}"}).json()
    # create Patient, create Observation, $everything, read, $everything
    assert accesses["total"] == 5


def test_compartment_of_several_patients_is_the_union(client: FhirClient, engine: Engine) -> None:
    """``FhirService.compartment`` takes a list of patient ids (linked records of one person)."""
    ids = [client.post("/fhir/Patient", json=patient(given=g)).json()["id"] for g in "甲乙"]
    observations = {
        client.post(
            "/fhir/Observation", json=observation(subject={"reference": f"Patient/{pid}"})
        ).json()["id"]
        for pid in ids
    }
    runtime = Runtime(engine, "http://testserver/fhir")
    with runtime.transaction(RequestContext.system("system/test")) as service:
        members, included = service.compartment(ids)
        assert {r.res_id for r in members if r.res_type == "Observation"} == observations
        assert included == []
        assert service.compartment([]) == ([], [])
        alone, _ = service.compartment(ids[:1])
        assert len([r for r in alone if r.res_type == "Observation"]) == 1


def test_large_index_batches_store_every_value_exactly(engine: Engine) -> None:
    """Batches of ``COPY_MIN_ROWS`` rows and more go by COPY on PostgreSQL: text with tabs,
    newlines, backslashes and Chinese, NULLs and timestamps must come back as they were sent."""
    with Session(engine) as session:
        owner = session.execute(
            ResourceRow.__table__.insert()
            .values(
                res_type="Basic",
                res_id="copy-check",
                version_id=1,
                last_updated=datetime(2026, 11, 23),
                deleted=False,
                content={"resourceType": "Basic", "id": "copy-check"},
            )
            .returning(ResourceRow.pk)
        ).scalar_one()
        texts = [f"王\t{i}\\n\n\r\\x01 end" for i in range(COPY_MIN_ROWS + 6)]
        strings = [
            {
                "resource_pk": owner,
                "res_type": "Basic",
                "param": "p",
                "value_norm": t,
                "value_exact": t,
            }
            for t in texts
        ]
        moments = [datetime(2026, 1, 1, 8, 30, 15, i) for i in range(COPY_MIN_ROWS)]
        dates = [
            {"resource_pk": owner, "res_type": "Basic", "param": "d", "low": m, "high": m}
            for m in moments
        ]
        insert_rows(session, StringIndex.__table__, strings)
        insert_rows(session, DateIndex.__table__, dates)
        session.commit()
        got = session.execute(select(StringIndex.value_exact, StringIndex.value_norm)).all()
        assert sorted(v for v, _ in got) == sorted(texts)
        assert all(v == n for v, n in got)
        got_dates = session.execute(select(DateIndex.low, DateIndex.high)).all()
        assert sorted(low for low, _ in got_dates) == moments
        assert all(low == high for low, high in got_dates)
        refs = [
            {
                "resource_pk": owner,
                "res_type": "Basic",
                "param": "r",
                "target_type": "Patient",
                "target_id": f"p{i}",
                "target_url": None,
                "identifier_system": None,
                "identifier_value": None,
            }
            for i in range(COPY_MIN_ROWS)
        ]
        insert_rows(session, ReferenceIndex.__table__, refs)
        session.commit()
        got_refs = session.execute(
            select(ReferenceIndex.target_id, ReferenceIndex.target_url)
        ).all()
        assert sorted(t for t, _ in got_refs) == sorted(r["target_id"] for r in refs)
        assert all(url is None for _, url in got_refs)


def test_a_link_written_only_on_the_other_side_still_joins_the_person(
    client: FhirClient,
) -> None:
    """ADR 0018: ``$everything`` looks links up only when the patient has one or a Patient of
    its compartment links to it; a registration that names this one (and is not named back)
    is found through the compartment, so its record is still part of the answer."""
    alone = client.post("/fhir/Patient", json=patient()).json()["id"]
    other = client.post(
        "/fhir/Patient",
        json=patient(link=[{"other": {"reference": f"Patient/{alone}"}, "type": "seealso"}]),
    ).json()["id"]
    theirs = client.post(
        "/fhir/Observation", json=observation(subject={"reference": f"Patient/{other}"})
    ).json()["id"]
    bundle = client.get(f"/fhir/Patient/{alone}/$everything").json()
    found = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    assert found == {f"Patient/{alone}", f"Patient/{other}", f"Observation/{theirs}"}
    assert bundle["entry"][0]["resource"]["id"] == alone
    unlinked = client.post("/fhir/Patient", json=patient(given="小红")).json()["id"]
    single = client.get(f"/fhir/Patient/{unlinked}/$everything").json()
    assert [e["resource"]["id"] for e in single["entry"]] == [unlinked]
