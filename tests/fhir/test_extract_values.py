"""extract_index_rows: the rows each kind of value becomes (the contract the search side uses)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from yilian.fhir.models import INDEX_TABLES
from yilian.fhir.searchparams import registry
from yilian.fhir.searchparams.extract import (
    _collect_fallback,
    _fhirpath,
    extract_index_rows,
    fallback_expressions,
)
from yilian.fhir.searchparams.normalise import OPEN_HIGH, OPEN_LOW
from yilian.fhir.searchparams.paths import Unsupported, compile_expression

CORE_TYPES = [
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Encounter",
    "Condition",
    "Observation",
    "DiagnosticReport",
    "ImagingStudy",
    "MedicationRequest",
    "Immunization",
    "ServiceRequest",
    "Task",
    "Appointment",
    "Slot",
    "Schedule",
    "CareTeam",
    "CarePlan",
    "EpisodeOfCare",
    "Consent",
    "AuditEvent",
]


def rows(resource: dict[str, Any], kind: str, param: str) -> list[dict[str, Any]]:
    return [r for r in extract_index_rows(resource)[kind] if r["param"] == param]


def values(resource: dict[str, Any], kind: str, param: str, *columns: str) -> set[Any]:
    found = rows(resource, kind, param)
    if len(columns) == 1:
        return {r[columns[0]] for r in found}
    return {tuple(r[c] for c in columns) for r in found}


def test_every_kind_is_present_and_rows_have_exactly_the_table_columns() -> None:
    result = extract_index_rows({"resourceType": "Patient", "id": "p"})
    assert set(result) == set(INDEX_TABLES)
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "Wang"}],
        "birthDate": "1990",
        "generalPractitioner": [{"reference": "Practitioner/1"}],
        "identifier": [{"system": "s", "value": "v"}],
        "link": [{"other": {"reference": "Patient/2"}, "type": "seealso"}],
        "meta": {"profile": ["http://example.org/p"]},
    }
    for kind, found in extract_index_rows(patient).items():
        table_columns = {c.name for c in INDEX_TABLES[kind].__table__.columns}
        for row in found:
            assert set(row) == table_columns - {"pk", "resource_pk"}
            assert row["res_type"] == "Patient"


def test_human_name_parts_are_separate_rows_with_folded_values() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [
            {"family": "Álvarez", "given": ["José", "María"], "prefix": ["Dr."], "text": "x y"},
            {"text": "王小明", "family": "王", "given": ["小明"]},
        ],
    }
    assert values(patient, "string", "name", "value_exact", "value_norm") == {
        ("Álvarez", "alvarez"),
        ("José", "jose"),
        ("María", "maria"),
        ("Dr.", "dr."),
        ("x y", "x y"),
        ("王小明", "王小明"),
        ("王", "王"),
        ("小明", "小明"),
    }
    assert values(patient, "string", "family", "value_norm") == {"alvarez", "王"}
    assert values(patient, "string", "given", "value_norm") == {"jose", "maria", "小明"}


def test_address_parts_are_separate_rows() -> None:
    patient = {
        "resourceType": "Patient",
        "address": [
            {
                "line": ["1 Main  St", "Flat 2"],
                "city": "Springfield",
                "district": "Greene",
                "state": "MO",
                "postalCode": "65801",
                "country": "US",
                "text": "whole",
            }
        ],
    }
    assert values(patient, "string", "address", "value_norm") == {
        "1 main st",
        "flat 2",
        "springfield",
        "greene",
        "mo",
        "65801",
        "us",
        "whole",
    }
    assert values(patient, "string", "address-city", "value_exact") == {"Springfield"}


def test_codeable_concept_gives_a_row_per_coding_and_one_for_the_text() -> None:
    observation = {
        "resourceType": "Observation",
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "8302-2", "display": "Body  Height"},
                {"system": "http://snomed.info/sct", "code": "50373000"},
            ],
            "text": "身高",
        },
    }
    assert values(observation, "token", "code", "system", "code", "text_norm") == {
        ("http://loinc.org", "8302-2", "body height"),
        ("http://snomed.info/sct", "50373000", None),
        (None, None, "身高"),
    }


def test_identifier_contact_point_code_and_boolean_tokens() -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": "urn:oid:2.16.156", "value": "11010519491231002X", "type": {"text": "ID"}}
        ],
        "telecom": [{"system": "phone", "value": "138"}, {"system": "email", "value": "a@b.cn"}],
        "gender": "female",
        "active": False,
    }
    assert values(patient, "token", "identifier", "system", "code", "text_norm") == {
        ("urn:oid:2.16.156", "11010519491231002X", "id")
    }
    assert values(patient, "token", "telecom", "system", "code") == {
        ("phone", "138"),
        ("email", "a@b.cn"),
    }
    assert values(patient, "token", "phone", "code") == {"138"}
    assert values(patient, "token", "email", "code") == {"a@b.cn"}
    assert values(patient, "token", "gender", "system", "code") == {(None, "female")}
    assert values(patient, "token", "active", "code") == {"false"}


@pytest.mark.parametrize(
    ("deceased", "expected"),
    [({}, "false"), ({"deceasedBoolean": False}, "false"), ({"deceasedBoolean": True}, "true")]
    + [({"deceasedDateTime": "2020-01-01"}, "true")],
)
def test_patient_deceased_is_always_a_boolean_token(
    deceased: dict[str, Any], expected: str
) -> None:
    patient = {"resourceType": "Patient", **deceased}
    assert values(patient, "token", "deceased", "code") == {expected}


def test_dates_periods_and_timing() -> None:
    encounter = {"resourceType": "Encounter", "period": {"start": "2024-05-01T08:00:00+08:00"}}
    assert values(encounter, "date", "date", "low", "high") == {(datetime(2024, 5, 1), OPEN_HIGH)}
    ended = {"resourceType": "Encounter", "period": {"end": "2024-05"}}
    assert values(ended, "date", "date", "low", "high") == {(OPEN_LOW, datetime(2024, 6, 1))}
    backwards = {
        "resourceType": "Encounter",
        "period": {"start": "2024-05-02", "end": "2024-05-01"},
    }
    assert values(backwards, "date", "date", "low", "high") == {
        (datetime(2024, 5, 2), datetime(2024, 5, 3))
    }
    request = {
        "resourceType": "ServiceRequest",
        "occurrenceTiming": {
            "event": ["2024-01-01", "2024-02-01"],
            "repeat": {"boundsPeriod": {"start": "2024", "end": "2025"}},
        },
    }
    assert values(request, "date", "occurrence", "low", "high") == {
        (datetime(2024, 1, 1), datetime(2024, 1, 2)),
        (datetime(2024, 2, 1), datetime(2024, 2, 2)),
        (datetime(2024, 1, 1), datetime(2026, 1, 1)),
    }
    unreadable = {"resourceType": "Patient", "birthDate": "not a date"}
    assert rows(unreadable, "date", "birthdate") == []


def test_choice_elements_index_by_their_actual_type() -> None:
    onset_period = {"resourceType": "Condition", "onsetPeriod": {"start": "2020", "end": "2021"}}
    assert values(onset_period, "date", "onset-date", "low", "high") == {
        (datetime(2020, 1, 1), datetime(2022, 1, 1))
    }
    onset_text = {"resourceType": "Condition", "onsetString": "childhood"}
    assert values(onset_text, "string", "onset-info", "value_norm") == {"childhood"}
    assert rows(onset_text, "date", "onset-date") == []
    age = {"resourceType": "Condition", "onsetAge": {"value": 5, "unit": "a", "code": "a"}}
    assert values(age, "quantity", "onset-age", "value", "code") == {(5.0, "a")}


def test_quantities_money_ranges_and_sampled_data() -> None:
    observation = {
        "resourceType": "Observation",
        "valueQuantity": {
            "value": 7.2,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
        "component": [
            {"valueQuantity": {"value": 120, "unit": "mmHg"}},
            {"valueSampledData": {"origin": {"value": 0}, "period": 1, "dimensions": 1}},
        ],
    }
    assert values(observation, "quantity", "value-quantity", "value", "system", "code", "unit") == {
        (7.2, "http://unitsofmeasure.org", "mmol/L", "mmol/L")
    }
    assert values(observation, "quantity", "component-value-quantity", "value", "unit") == {
        (120.0, "mmHg")
    }
    claim = {"resourceType": "ChargeItem", "priceOverride": {"value": 12.5, "currency": "CNY"}}
    assert values(claim, "quantity", "price-override", "value", "system", "code") == {
        (12.5, "urn:iso:std:iso:4217", "CNY")
    }
    context = {
        "resourceType": "Library",
        "useContext": [
            {"code": {"code": "age"}, "valueRange": {"low": {"value": 3}, "high": {"value": 18}}}
        ],
    }
    assert values(context, "quantity", "context-quantity", "value") == {3.0, 18.0}
    no_value = {"resourceType": "Observation", "valueQuantity": {"unit": "mg"}}
    assert rows(no_value, "quantity", "value-quantity") == []


def test_numbers() -> None:
    risk = {
        "resourceType": "RiskAssessment",
        "prediction": [{"probabilityDecimal": 0.25}, {"probabilityRange": {"low": {"value": 1}}}],
    }
    assert values(risk, "number", "probability", "value") == {0.25, 1.0}
    sequence = {"resourceType": "MolecularSequence", "referenceSeq": {"windowStart": 22125500}}
    assert values(sequence, "number", "window-start", "value") == {22125500.0}


def test_references_relative_versioned_absolute_contained_identifier() -> None:
    observation = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/p1/_history/3"},
        "performer": [
            {"reference": "https://fhir.example.cn/r4/Practitioner/d1"},
            {"reference": "#c1"},
            {"identifier": {"system": "urn:hospital", "value": "D-9"}},
            {"reference": "urn:uuid:0b0a"},
        ],
    }
    assert values(
        observation, "reference", "subject", "target_type", "target_id", "target_url"
    ) == {("Patient", "p1", None)}
    assert values(observation, "reference", "patient", "target_id") == {"p1"}
    assert values(
        observation,
        "reference",
        "performer",
        "target_type",
        "target_id",
        "target_url",
        "identifier_system",
        "identifier_value",
    ) == {
        ("Practitioner", "d1", "https://fhir.example.cn/r4/Practitioner/d1", None, None),
        (None, None, None, "urn:hospital", "D-9"),
        (None, None, "urn:uuid:0b0a", None, None),
    }


def test_resolve_is_keeps_only_references_of_that_type() -> None:
    group_subject = {"resourceType": "Observation", "subject": {"reference": "Group/g1"}}
    assert values(group_subject, "reference", "subject", "target_type") == {"Group"}
    assert rows(group_subject, "reference", "patient") == []
    appointment = {
        "resourceType": "Appointment",
        "participant": [
            {"actor": {"reference": "Patient/p"}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/d"}, "status": "accepted"},
            {"actor": {"reference": "Location/l"}, "status": "accepted"},
        ],
    }
    assert values(appointment, "reference", "patient", "target_id") == {"p"}
    assert values(appointment, "reference", "practitioner", "target_id") == {"d"}
    assert values(appointment, "reference", "location", "target_id") == {"l"}
    assert len(rows(appointment, "reference", "actor")) == 3


def test_canonicals_and_uris() -> None:
    plan = {
        "resourceType": "PlanDefinition",
        "url": "http://example.org/pd",
        "library": ["http://example.org/Library/lib|1.0"],
    }
    assert values(plan, "uri", "url", "value") == {"http://example.org/pd"}
    assert values(plan, "reference", "depends-on", "target_url") == {
        "http://example.org/Library/lib|1.0"
    }
    tagged = {"resourceType": "Patient", "meta": {"profile": ["http://example.org/sd"]}}
    assert values(tagged, "uri", "_profile", "value") == {"http://example.org/sd"}


def test_extension_filters_and_where_on_a_code() -> None:
    artifact = {
        "resourceType": "Library",
        "relatedArtifact": [
            {"type": "depends-on", "resource": "http://x/Library/a"},
            {"type": "successor", "resource": "http://x/Library/b"},
        ],
    }
    assert values(artifact, "reference", "depends-on", "target_url") == {"http://x/Library/a"}
    assert values(artifact, "reference", "successor", "target_url") == {"http://x/Library/b"}


def test_primitive_arrays_with_extension_nulls_are_skipped() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"given": [None, "Ann"], "_given": [{"extension": []}, None]}],
    }
    assert values(patient, "string", "given", "value_exact") == {"Ann"}


def test_duplicates_within_a_parameter_are_dropped() -> None:
    patient = {"resourceType": "Patient", "name": [{"given": ["A"]}, {"given": ["A"]}]}
    assert len(rows(patient, "string", "given")) == 1


def test_rows_are_fresh_dicts_each_call() -> None:
    patient = {"resourceType": "Patient", "gender": "male"}
    first = rows(patient, "token", "gender")[0]
    first["resource_pk"] = 1
    assert "resource_pk" not in rows(patient, "token", "gender")[0]


def test_no_expression_of_any_type_falls_back_to_fhirpathpy() -> None:
    fallbacks = {t: fallback_expressions(t) for t in registry.resource_types()}
    assert {t: f for t, f in fallbacks.items() if f} == {}
    assert set(CORE_TYPES) <= registry.resource_types()


def test_unsupported_expressions_are_refused_not_misread() -> None:
    for expression in (
        "Patient.name.first()",
        "Patient.name.where(use = 'official' and family.exists())",
        "Observation.value",  # not rooted at the type being compiled
        "Patient.nosuchelement",
    ):
        with pytest.raises(Unsupported):
            compile_expression(expression, "Patient")


def test_the_fhirpathpy_fallback_infers_types_from_the_values() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "Li", "given": ["Wei"]}, {"family": "Other"}],
        "telecom": [{"system": "phone", "value": "138"}],
        "identifier": [{"system": "s", "value": "v"}],
    }
    found: dict[tuple[str, tuple[Any, ...]], None] = {}
    _collect_fallback(patient, "string", "n", _fhirpath("Patient.name.first()"), found)
    assert set(found) == {("n", ("li", "Li")), ("n", ("wei", "Wei"))}
    found = {}
    run = _fhirpath("Patient.telecom.first() | Patient.identifier.first()")
    _collect_fallback(patient, "token", "t", run, found)
    assert set(found) == {("t", ("phone", "138", None)), ("t", ("s", "v", None))}
    found = {}
    _collect_fallback(patient, "token", "x", _fhirpath("Patient.name.resolve()"), found)
    assert found == {}  # fhirpathpy cannot evaluate it: logged, nothing indexed, no error
