"""Searches with several parameters: one criterion drives (an IN list), the others are checked
per owner with correlated EXISTS — the results must be the same whichever criterion drives."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import aliased

from tests.fhir.search.conftest import BASE, Db
from yilian.fhir.models import ResourceRow
from yilian.fhir.search.params import parse_search
from yilian.fhir.search.sql import match_query

LOINC = "http://loinc.org"


def observation(pid: str, code: str, when: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        **extra,
    }


@pytest.fixture
def people(db: Db) -> dict[str, str]:
    ids = {
        "ann": db.create({"resourceType": "Patient", "gender": "female"}),
        "bob": db.create({"resourceType": "Patient", "gender": "male"}),
    }
    ids["a1"] = db.create(observation(ids["ann"], "29463-7", "2024-03-01"))
    ids["a2"] = db.create(observation(ids["ann"], "29463-7", "2022-01-10"))
    ids["a3"] = db.create(
        observation(ids["ann"], "8302-2", "2024-05-01", valueString="x", status="amended")
    )
    ids["b1"] = db.create(observation(ids["bob"], "29463-7", "2024-04-01"))
    ids["e1"] = db.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{ids['ann']}"},
            "period": {"start": "2024-02-01", "end": "2024-02-03"},
        }
    )
    ids["e2"] = db.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{ids['ann']}"},
            "period": {"start": "2025-02-01"},
        }
    )
    return ids


def names(people: dict[str, str], found: list[str]) -> list[str]:
    by_id = {v: k for k, v in people.items()}
    return sorted(by_id[i] for i in found)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("subject=Patient/{ann}&code=http://loinc.org|29463-7&date=ge2023", ["a1"]),
        ("code=http://loinc.org|29463-7&date=ge2023", ["a1", "b1"]),
        ("date=ge2023&code=29463-7&subject={ann}", ["a1"]),
        ("subject={ann}&code:not=29463-7", ["a3"]),
        ("subject={ann}&status:missing=false&date=lt2023", ["a2"]),
        ("subject={ann}&value-string:missing=true", ["a1", "a2"]),
        ("subject={ann}&value-string:missing=false", ["a3"]),
        ("code:not=8302-2&date=ge2024", ["a1", "b1"]),
        ("subject={ann},{bob}&status=amended", ["a3"]),
        ("_id={a1},{a2},{b1}&subject={ann}&date=ge2023", ["a1"]),
        ("patient={ann}&date=ge2024-01-01&date=lt2024-12-31", ["a1", "a3"]),
    ],
)
def test_observation_combinations(
    db: Db, people: dict[str, str], query: str, expected: list[str]
) -> None:
    assert names(people, db.ids("Observation", query.format(**people))) == expected


def test_encounter_patient_and_date_range(db: Db, people: dict[str, str]) -> None:
    query = "patient={ann}&date=ge2024-01-01&date=lt2024-12-31".format(**people)
    assert names(people, db.ids("Encounter", query)) == ["e1"]
    query = "patient={ann}&date=ge2024-06-01".format(**people)  # an open period overlaps
    assert names(people, db.ids("Encounter", query)) == ["e2"]


def _sql(engine: Engine, resource_type: str, params: list[tuple[str, str]]) -> str:
    parsed = parse_search(resource_type, params, base_url=BASE)
    resource = aliased(ResourceRow)
    query = match_query(
        parsed.sql_types, parsed.filters, resource, dialect=engine.dialect.name
    ).add_columns(resource.pk)
    return str(query.compile(engine))


def test_reference_drives_the_others_are_correlated(engine: Engine) -> None:
    """The query's shape, not its speed: the reference is the one IN list, the code and date are
    EXISTS on the resource's own rows (so they cannot be read in full), whatever their order."""
    params = [("date", "ge2023"), ("code", f"{LOINC}|29463-7"), ("subject", "Patient/p1")]
    sql = _sql(engine, "Observation", params)
    assert sql.count(" IN (SELECT") == 1
    assert "IN (SELECT idx_reference.resource_pk" in sql
    assert sql.count("EXISTS (SELECT") == 2
    assert "idx_token.resource_pk = fhir_resource_1.pk" in sql
    assert "idx_date.resource_pk = fhir_resource_1.pk" in sql
    # SQLite must fetch the driver's rows by primary key, not walk the type's index.
    typed = "fhir_resource_1.res_type || " in sql
    assert typed == (engine.dialect.name == "sqlite")


def test_id_drives_with_the_unique_index(engine: Engine) -> None:
    sql = _sql(engine, "Observation", [("_id", "a,b"), ("subject", "Patient/p1")])
    assert "IN (SELECT" not in sql
    assert sql.count("EXISTS (SELECT") == 1
    assert "fhir_resource_1.res_type ||" not in sql  # (res_type, res_id) is the unique index


def test_one_parameter_keeps_its_lookup(engine: Engine) -> None:
    sql = _sql(engine, "Patient", [("identifier", "urn:id|1")])
    assert "IN (SELECT idx_token.resource_pk" in sql
    assert "EXISTS" not in sql
