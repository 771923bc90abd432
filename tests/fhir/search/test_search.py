"""Search against the real store on SQLite and PostgreSQL: every kind, modifier and option."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fhir.search.conftest import BASE, Db, include_refs, match_ids
from yilian.fhir.errors import FhirError

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def patient(family: str, *, ident: str, birth: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:id", "value": ident}],
        "name": [{"family": family, "given": ["Anna"]}],
        "birthDate": birth,
        **extra,
    }


def observation(pid: str, code: str, when: str, value: float, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}], "text": "Body weight"},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "kg", "system": UCUM, "code": "kg"},
        **extra,
    }


@pytest.fixture
def world(db: Db) -> dict[str, str]:
    ids = {
        "muller": db.create(patient("Müller", ident="1", birth="1980-05-02", gender="female")),
        "wang": db.create(patient("王小明", ident="2", birth="1990", gender="male")),
        "smith": db.create(patient("Smith", ident="3", birth="2001-01-01")),
    }
    ids["o1"] = db.create(observation(ids["muller"], "29463-7", "2024-03-01T10:00:00Z", 60))
    ids["o2"] = db.create(observation(ids["muller"], "8302-2", "2023-06-15", 170.5))
    ids["o3"] = db.create(observation(ids["wang"], "29463-7", "2024-07-01", 72))
    return ids


def test_token(db: Db, world: dict[str, str]) -> None:
    assert db.ids("Patient", "identifier=urn:id|1") == [world["muller"]]
    assert db.ids("Patient", "identifier=2") == [world["wang"]]
    assert db.ids("Patient", "identifier=|2") == []
    assert sorted(db.ids("Patient", "identifier=urn:id|")) == sorted(
        [world["muller"], world["wang"], world["smith"]]
    )
    assert db.ids("Patient", "gender:not=male") == [world["muller"], world["smith"]]
    assert db.ids("Observation", "code:text=body") == [world["o1"], world["o2"], world["o3"]]
    assert db.ids("Observation", f"code={LOINC}|8302-2,{LOINC}|0000-0") == [world["o2"]]


def test_string(db: Db, world: dict[str, str]) -> None:
    assert db.ids("Patient", "family=mull") == [world["muller"]]
    assert db.ids("Patient", "family=王") == [world["wang"]]
    assert db.ids("Patient", "family:exact=Müller") == [world["muller"]]
    assert db.ids("Patient", "family:exact=müller") == []
    assert db.ids("Patient", "family:contains=小") == [world["wang"]]
    assert db.ids("Patient", "family:contains=%") == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("birthdate=1980", ["muller"]),
        ("birthdate=1990-05", []),  # 1990 (a year) is not inside May 1990
        ("birthdate=ge1990", ["wang", "smith"]),
        ("birthdate=gt1990", ["smith"]),
        ("birthdate=lt1990-06-01", ["muller", "wang"]),  # 1990 starts before June
        ("birthdate=le1980-05-02", ["muller"]),
        ("birthdate=sa1990", ["smith"]),
        ("birthdate=eb1990", ["muller"]),
        ("birthdate=ne1990", ["muller", "smith"]),
        ("birthdate=ap1980-05-02", ["muller"]),
        ("birthdate=ge1980&birthdate=lt2000", ["muller", "wang"]),
        ("birthdate=1980,2001", ["muller", "smith"]),
    ],
)
def test_date_prefixes(db: Db, world: dict[str, str], query: str, expected: list[str]) -> None:
    assert db.ids("Patient", query) == [world[k] for k in expected]


def test_period_and_partial_dates(db: Db) -> None:
    enc = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "period": {"start": "2024-01-10", "end": "2024-02-05"},
    }
    open_ended = {**enc, "period": {"start": "2024-03-01"}}
    e1, e2 = db.create(enc), db.create(open_ended)
    assert db.ids("Encounter", "date=2024-01") == []  # the stay runs into February
    assert db.ids("Encounter", "date=2024") == [e1]
    assert db.ids("Encounter", "date=ge2024-02") == [e1, e2]
    assert db.ids("Encounter", "date=gt2030") == [e2]
    assert db.ids("Encounter", "date=lt2024-01-11") == [e1]


def test_number_and_quantity(db: Db, world: dict[str, str]) -> None:
    assert db.ids("Observation", "value-quantity=60") == [world["o1"]]
    assert db.ids("Observation", "value-quantity=170") == []
    assert db.ids("Observation", "value-quantity=170.5") == [world["o2"]]
    assert db.ids("Observation", "value-quantity=gt70") == [world["o2"], world["o3"]]
    assert db.ids("Observation", f"value-quantity=le72|{UCUM}|kg") == [world["o1"], world["o3"]]
    assert db.ids("Observation", "value-quantity=72||kg") == [world["o3"]]
    assert db.ids("Observation", f"value-quantity=72|{UCUM}|g") == []
    assert db.ids("Observation", "value-quantity=ap66") == [world["o1"], world["o3"]]
    risk = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": {"reference": f"Patient/{world['muller']}"},
        "prediction": [{"probabilityDecimal": 0.25}],
    }
    rid = db.create(risk)
    assert db.ids("RiskAssessment", "probability=0.25") == [rid]
    assert db.ids("RiskAssessment", "probability=gt0.3") == []
    assert db.ids("RiskAssessment", "probability=0.2") == []


def test_reference(db: Db, world: dict[str, str]) -> None:
    m = world["muller"]
    mine = [world["o1"], world["o2"]]
    assert db.ids("Observation", f"subject={m}") == mine
    assert db.ids("Observation", f"subject=Patient/{m}") == mine
    assert db.ids("Observation", f"subject={BASE}/Patient/{m}") == mine
    assert db.ids("Observation", f"subject:Patient={m}") == mine
    assert db.ids("Observation", f"subject:Group={m}") == []
    assert db.ids("Observation", f"patient={m}") == mine
    ext = db.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "subject": {
                "reference": "http://other.org/fhir/Patient/9",
                "identifier": {"system": "urn:mrn", "value": "M9"},
            },
        }
    )
    assert db.ids("Observation", "subject=http://other.org/fhir/Patient/9") == [ext]
    assert db.ids("Observation", "subject:identifier=urn:mrn|M9") == [ext]


def test_uri(db: Db) -> None:
    vs = db.create(
        {"resourceType": "ValueSet", "status": "active", "url": "http://acme.org/fhir/ValueSet/a"}
    )
    assert db.ids("ValueSet", "url=http://acme.org/fhir/ValueSet/a") == [vs]
    assert db.ids("ValueSet", "url=http://acme.org/fhir") == []
    assert db.ids("ValueSet", "url:below=http://acme.org/fhir") == [vs]
    assert db.ids("ValueSet", "url:above=http://acme.org/fhir/ValueSet/a/b") == [vs]


def test_missing(db: Db, world: dict[str, str]) -> None:
    assert db.ids("Patient", "gender:missing=true") == [world["smith"]]
    assert db.ids("Patient", "gender:missing=false") == [world["muller"], world["wang"]]
    assert db.ids("Patient", "_id:missing=false") == [
        world["muller"],
        world["wang"],
        world["smith"],
    ]


def test_id_and_last_updated(db: Db, world: dict[str, str]) -> None:
    assert db.ids("Patient", f"_id={world['wang']},{world['smith']}") == [
        world["wang"],
        world["smith"],
    ]
    updated = db.search("Patient", f"_id={world['smith']}")["entry"][0]["resource"]["meta"]
    moment = updated["lastUpdated"]
    assert db.ids("Patient", f"_id={world['smith']}&_lastUpdated=ge{moment}") == [world["smith"]]
    assert db.ids("Patient", f"_id={world['smith']}&_lastUpdated=gt{moment}") == []
    assert len(db.ids("Patient", "_lastUpdated=ge2000")) == 3
    assert db.ids("Patient", "_lastUpdated=lt2000") == []


def test_deleted_never_match(db: Db, world: dict[str, str]) -> None:
    db.delete("Patient", world["smith"])
    assert db.ids("Patient", f"_id={world['smith']}") == []
    assert db.ids("Patient", "gender:missing=true") == []
    assert world["smith"] not in db.ids("Patient", "")


def test_chain_and_reverse_chain(db: Db, world: dict[str, str]) -> None:
    assert db.ids("Observation", "subject:Patient.identifier=urn:id|2") == [world["o3"]]
    assert db.ids("Observation", "patient.name=anna") == [world["o1"], world["o2"], world["o3"]]
    assert db.ids("Observation", "subject.family=mül") == [world["o1"], world["o2"]]
    assert db.ids("Patient", f"_has:Observation:patient:code={LOINC}|8302-2") == [world["muller"]]
    assert db.ids("Patient", "_has:Observation:subject:code=29463-7") == [
        world["muller"],
        world["wang"],
    ]
    db.delete("Observation", world["o2"])
    assert db.ids("Patient", "_has:Observation:patient:code=8302-2") == []


def test_sort(db: Db, world: dict[str, str]) -> None:
    order = ["muller", "wang", "smith"]
    assert db.ids("Patient", "_sort=birthdate") == [world[k] for k in order]
    assert db.ids("Patient", "_sort=-birthdate") == [world[k] for k in reversed(order)]
    assert db.ids("Patient", "_sort=family") == [world["muller"], world["smith"], world["wang"]]
    assert db.ids("Patient", "_sort=gender,-_id")[-1] == world["smith"]  # no gender sorts last
    assert db.ids("Observation", "_sort=-value-quantity") == [world["o2"], world["o3"], world["o1"]]
    assert db.ids("Observation", "_sort=-date")[0] == world["o3"]
    by_id = db.ids("Patient", "_sort=_id")
    assert by_id == sorted(by_id)
    assert db.ids("Patient", "_sort=-_lastUpdated") == [world[k] for k in reversed(order)]


def test_summary_elements_total(db: Db, world: dict[str, str]) -> None:
    counted = db.search("Patient", "_summary=count")
    assert counted["total"] == 3 and "entry" not in counted
    summary = db.search("Observation", f"_id={world['o1']}&_summary=true")["entry"][0]["resource"]
    assert "valueQuantity" in summary and "subject" in summary
    assert summary["meta"]["tag"][-1]["code"] == "SUBSETTED"
    elements = db.search("Patient", f"_id={world['wang']}&_elements=gender")["entry"][0]["resource"]
    assert set(elements) == {"resourceType", "id", "meta", "gender"}
    assert elements["meta"]["tag"][-1]["code"] == "SUBSETTED"
    assert "total" not in db.search("Patient", "_total=none")
    assert db.search("Patient", "_count=2&_total=accurate")["total"] == 3


def test_include_and_revinclude(db: Db, world: dict[str, str]) -> None:
    bundle = db.search("Observation", f"_id={world['o1']}&_include=Observation:subject")
    assert match_ids(bundle) == [world["o1"]]
    assert include_refs(bundle) == {f"Patient/{world['muller']}"}
    typed = db.search("Observation", f"_id={world['o1']}&_include=Observation:subject:Group")
    assert include_refs(typed) == set()
    everything = db.search("Observation", f"_id={world['o3']}&_include=*")
    assert include_refs(everything) == {f"Patient/{world['wang']}"}
    rev = db.search("Patient", f"_id={world['muller']}&_revinclude=Observation:subject")
    assert include_refs(rev) == {f"Observation/{world['o1']}", f"Observation/{world['o2']}"}
    iterated = db.search(
        "Observation",
        f"_id={world['o3']}&_include=Observation:subject&_revinclude:iterate=Observation:subject",
    )
    assert include_refs(iterated) == {f"Patient/{world['wang']}"}  # o3 itself is a match
    gp = db.create({"resourceType": "Practitioner", "name": [{"family": "Li"}]})
    db.put(
        {
            **patient("Wang", ident="2", birth="1990"),
            "id": world["wang"],
            "generalPractitioner": [{"reference": f"Practitioner/{gp}"}],
        }
    )
    iterated = db.search(
        "Observation",
        f"_id={world['o3']}&_include=Observation:subject"
        "&_include:iterate=Patient:general-practitioner",
    )
    assert include_refs(iterated) == {f"Patient/{world['wang']}", f"Practitioner/{gp}"}


def test_bundle_shape(db: Db, world: dict[str, str]) -> None:
    bundle = db.search("Patient", "identifier=urn:id|1")
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    entry = bundle["entry"][0]
    assert entry["fullUrl"] == f"{BASE}/Patient/{world['muller']}"
    assert entry["search"] == {"mode": "match"}
    assert entry["resource"]["meta"]["versionId"] == "1"
    assert bundle["link"] == [
        {"relation": "self", "url": f"{BASE}/Patient?identifier=urn%3Aid%7C1"}
    ]


def test_system_level_search(db: Db, world: dict[str, str]) -> None:
    found = db.search(None, [("_type", "Patient,Observation"), ("_count", "100")])
    assert found["total"] == 6
    assert set(db.ids(None, f"_id={world['o1']},{world['wang']}")) == {world["o1"], world["wang"]}
    assert db.ids(None, [("_type", "Patient"), ("_id", world["o1"])]) == []


def test_errors_are_400_with_parameter(db: Db) -> None:
    with pytest.raises(FhirError) as caught:
        db.search("Patient", "birthdate=tomorrow")
    assert caught.value.status == 400
    assert caught.value.outcome()["issue"][0]["expression"] == ["birthdate"]
