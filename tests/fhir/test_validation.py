"""Every validation rule, good and bad, with the element path and rule name it reports."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from yilian.fhir.errors import Issue, ValidationFailed
from yilian.fhir.systems import RESIDENT_ID
from yilian.fhir.validation import find_issues, resource_types, validate_resource

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p-1.a",
    "identifier": [
        {"system": "http://yilian.health/fhir/sid/mrn/123", "value": "A-77"},
        {"system": RESIDENT_ID, "value": "11010519491231002X"},
    ],
    "name": [{"family": "张", "given": ["伟"]}],
    "gender": "female",
    "birthDate": "1949-12-31",
    "contact": [{"gender": "male", "name": {"text": "张三"}}],
}

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "subject": {"reference": "Patient/p-1"},
    "effectiveDateTime": "2024-05-01T08:30:00+08:00",
    "valueQuantity": {"value": 72, "unit": "/min", "comparator": "<"},
}


def issues_of(resource: Any, **kwargs: Any) -> list[tuple[str | None, str | None]]:
    return [(i.expression, i.rule) for i in find_issues(resource, **kwargs)]


def with_change(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(base)
    changed.update(changes)
    return changed


def test_valid_resources_pass() -> None:
    validate_resource(PATIENT, expected_type="Patient")
    validate_resource(OBSERVATION)


def test_validation_failed_lists_every_issue_as_http_422() -> None:
    bad = with_change(PATIENT, gender="m", active="yes", nickname="Wei")
    with pytest.raises(ValidationFailed) as caught:
        validate_resource(bad)
    assert caught.value.status == 422
    assert {i.rule for i in caught.value.issues} == {
        "required-binding",
        "fhir-r4-structure",
        "unknown-element",
    }
    outcome = caught.value.outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert {tuple(i["expression"]) for i in outcome["issue"]} == {
        ("Patient.gender",),
        ("Patient.active",),
        ("Patient.nickname",),
    }


# --- structure -----------------------------------------------------------------------------------


def test_not_an_object() -> None:
    assert issues_of(["Patient"]) == [(None, "fhir-r4-structure")]


def test_missing_and_unknown_resource_type() -> None:
    assert issues_of({"id": "1"}) == [("resourceType", "required-element")]
    assert issues_of({"resourceType": "Patiënt"}) == [("resourceType", "unknown-resource-type")]


def test_every_r4_resource_type_is_known() -> None:
    types = resource_types()
    assert {"Patient", "MedicinalProduct", "ExplanationOfBenefit", "Bundle"} <= types
    assert len(types) == 146
    assert "DomainResource" not in types


def test_expected_type_must_match() -> None:
    assert issues_of(PATIENT, expected_type="Practitioner") == [
        ("resourceType", "resource-type-mismatch")
    ]


def test_unknown_element_names_the_path() -> None:
    bad = copy.deepcopy(PATIENT)
    bad["name"][0]["middle"] = "X"
    assert issues_of(bad) == [("Patient.name[0].middle", "unknown-element")]


def test_choice_base_name_is_not_an_element() -> None:
    assert issues_of(with_change(PATIENT, deceased=True)) == [
        ("Patient.deceased", "unknown-element")
    ]


def test_missing_required_element() -> None:
    bad = copy.deepcopy(OBSERVATION)
    del bad["status"]
    assert issues_of(bad) == [("Observation.status", "required-element")]


def test_required_primitive_given_only_as_extension_is_present() -> None:
    # https://hl7.org/fhir/R4/json.html#primitive: "_status" with a data-absent-reason extension.
    ok = copy.deepcopy(OBSERVATION)
    del ok["status"]
    ok["_status"] = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown",
            }
        ]
    }
    assert issues_of(ok) == []


def test_missing_required_choice_element_in_backbone() -> None:
    bad = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/1"},
    }
    assert issues_of(bad) == [("MedicationRequest.medication", "required-element")]


def test_two_types_for_one_choice_element() -> None:
    bad = with_change(OBSERVATION, valueString="72")
    assert issues_of(bad) == [("Observation.valueString", "choice-type")]


@pytest.mark.parametrize(
    ("element", "value", "path"),
    [
        ("active", "true", "Patient.active"),
        ("active", None, "Patient.active"),
        ("birthDate", 1949, "Patient.birthDate"),
        ("birthDate", "1949-02-30", "Patient.birthDate"),
        ("birthDate", "31/12/1949", "Patient.birthDate"),
        ("name", {"family": "张"}, "Patient.name"),
        ("managingOrganization", [{"reference": "Organization/1"}], "Patient.managingOrganization"),
        ("multipleBirthInteger", 2.5, "Patient.multipleBirthInteger"),
        ("multipleBirthInteger", True, "Patient.multipleBirthInteger"),
        ("telecom", ["13800000000"], "Patient.telecom[0]"),
    ],
)
def test_wrong_json_types(element: str, value: Any, path: str) -> None:
    assert issues_of(with_change(PATIENT, **{element: value})) == [(path, "fhir-r4-structure")]


def test_primitive_arrays_are_checked_item_by_item() -> None:
    bad = copy.deepcopy(PATIENT)
    bad["name"][0]["given"] = ["伟", 7]
    assert issues_of(bad) == [("Patient.name[0].given[1]", "fhir-r4-structure")]


def test_decimal_accepts_integers_and_fractions() -> None:
    ok = copy.deepcopy(OBSERVATION)
    ok["valueQuantity"]["value"] = 72.5
    assert issues_of(ok) == []


def test_primitive_extension_keys_are_allowed() -> None:
    ok = with_change(PATIENT, _gender={"extension": [{"url": "http://x", "valueString": "女"}]})
    assert issues_of(ok) == []


@pytest.mark.parametrize("rid", ["a" * 64, "A-z.0", "1"])
def test_good_ids(rid: str) -> None:
    assert issues_of(with_change(PATIENT, id=rid)) == []


@pytest.mark.parametrize("rid", ["a" * 65, "p_1", "p/1", "", "病人"])
def test_bad_ids(rid: str) -> None:
    assert issues_of(with_change(PATIENT, id=rid)) == [("Patient.id", "id-format")]


def test_contained_resources_are_validated_with_their_paths() -> None:
    bad = with_change(
        PATIENT,
        contained=[
            {"resourceType": "Organization", "id": "org_1", "active": "y"},
            {"resourceType": "Nope"},
        ],
    )
    assert issues_of(bad) == [
        ("Patient.contained[0].active", "fhir-r4-structure"),
        ("Patient.contained[0].id", "id-format"),
        ("Patient.contained[1].resourceType", "unknown-resource-type"),
    ]


def test_bundle_entries_are_validated() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": PATIENT}, {"resource": with_change(OBSERVATION, status="done")}],
    }
    assert issues_of(bundle) == [("Bundle.entry[1].resource.status", "required-binding")]


def test_recursive_backbone_elements_use_the_referenced_definition() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "status": "draft",
        "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "txt"}]}],
    }
    assert issues_of(questionnaire) == [("Questionnaire.item[0].item[0].type", "required-binding")]


# --- required bindings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "element", "good", "bad"),
    [
        ({"resourceType": "Patient"}, "gender", "unknown", "m"),
        (OBSERVATION, "status", "amended", "completed"),
        ({"resourceType": "Encounter", "class": {"code": "AMB"}}, "status", "finished", "done"),
        (
            {"resourceType": "Appointment", "participant": [{"status": "accepted"}]},
            "status",
            "booked",
            "confirmed",
        ),
        (
            {
                "resourceType": "Slot",
                "schedule": {"reference": "Schedule/1"},
                "start": "2024-01-01T08:00:00+08:00",
                "end": "2024-01-01T08:15:00+08:00",
            },
            "status",
            "busy-tentative",
            "taken",
        ),
        ({"resourceType": "Task", "intent": "order"}, "status", "in-progress", "open"),
        ({"resourceType": "Task", "status": "ready"}, "intent", "plan", "referral"),
    ],
)
def test_required_code_bindings(
    resource: dict[str, Any], element: str, good: str, bad: str
) -> None:
    resource_type = resource["resourceType"]
    assert issues_of(with_change(resource, **{element: good})) == []
    assert issues_of(with_change(resource, **{element: bad})) == [
        (f"{resource_type}.{element}", "required-binding")
    ]


def test_binding_message_names_the_value_set_and_allowed_codes() -> None:
    [issue] = find_issues(with_change(PATIENT, gender="m"))
    assert issue == Issue(
        "Code 'm' is not in the required value set "
        "http://hl7.org/fhir/ValueSet/administrative-gender "
        "(allowed: female, male, other, unknown)",
        code="code-invalid",
        expression="Patient.gender",
        rule="required-binding",
    )


def test_bindings_inside_backbone_and_data_types() -> None:
    bad = copy.deepcopy(PATIENT)
    bad["contact"][0]["gender"] = "F"
    bad["identifier"][0]["use"] = "primary"
    bad["name"][0]["use"] = "legal"
    bad["telecom"] = [{"system": "wechat", "value": "zhangwei"}]
    assert issues_of(bad) == [
        ("Patient.identifier[0].use", "required-binding"),
        ("Patient.name[0].use", "required-binding"),
        ("Patient.contact[0].gender", "required-binding"),
        ("Patient.telecom[0].system", "required-binding"),
    ]


def test_code_lists_are_checked_item_by_item() -> None:
    role = {
        "resourceType": "PractitionerRole",
        "availableTime": [{"daysOfWeek": ["mon", "sun", "funday"]}],
    }
    assert issues_of(role) == [
        ("PractitionerRole.availableTime[0].daysOfWeek[2]", "required-binding")
    ]


CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def test_codeable_concept_checks_only_codings_of_the_value_set_system() -> None:
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/1"},
        "clinicalStatus": {
            "coding": [
                {"system": CLINICAL, "code": "active"},
                {"system": "http://yilian.health/fhir/CodeSystem/local", "code": "在治"},
            ]
        },
    }
    assert issues_of(condition) == []
    condition["clinicalStatus"]["coding"][0]["code"] = "cured"
    assert issues_of(condition) == [("Condition.clinicalStatus.coding[0].code", "required-binding")]


def test_codeable_concept_with_text_only_passes() -> None:
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/1"},
        "clinicalStatus": {"text": "活动期"},
    }
    assert issues_of(condition) == []


def test_external_terminology_bindings_are_not_checked() -> None:
    # Attachment.contentType is bound (required) to BCP-13 MIME types, which the R4 package
    # does not enumerate: it is listed as skipped rather than wrongly rejecting real types.
    from yilian.fhir.validation import skipped_value_sets

    assert "http://hl7.org/fhir/ValueSet/mimetypes" in skipped_value_sets()
    ok = with_change(PATIENT, photo=[{"contentType": "image/x-anything"}])
    assert issues_of(ok) == []


# --- yilian identifier rules ---------------------------------------------------------------------


@pytest.mark.parametrize("resource_type", ["Patient", "Practitioner", "RelatedPerson"])
@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("11010519491231002", "gb11643-length"),
        ("11010519491231002Z", "gb11643-format"),
        ("010105194912310020", "gb11643-region"),
        ("110105194913310020", "gb11643-birth-date"),
        ("110105194912310021", "gb11643-check-digit"),
    ],
)
def test_bad_resident_ids_are_rejected(resource_type: str, value: str, rule: str) -> None:
    person: dict[str, Any] = {
        "resourceType": resource_type,
        "identifier": [{"system": RESIDENT_ID, "value": "440524188001010014"}],
    }
    if resource_type == "RelatedPerson":
        person["patient"] = {"reference": "Patient/1"}
    assert issues_of(person) == []
    person["identifier"].append({"system": RESIDENT_ID, "value": value})
    [issue] = find_issues(person)
    assert (issue.expression, issue.rule) == (f"{resource_type}.identifier[1].value", rule)
    assert "GB 11643-1999" in issue.message


def test_resident_id_rule_applies_only_to_its_system() -> None:
    other = copy.deepcopy(PATIENT)
    other["identifier"][1]["system"] = "http://hl7.org/fhir/sid/us-ssn"
    other["identifier"][1]["value"] = "123-45-6789"
    assert issues_of(other) == []


def test_resident_id_system_without_value() -> None:
    bad = copy.deepcopy(PATIENT)
    del bad["identifier"][1]["value"]
    assert issues_of(bad) == [("Patient.identifier[1].value", "required-element")]


def test_resident_id_of_wrong_type_is_reported_once() -> None:
    bad = copy.deepcopy(PATIENT)
    bad["identifier"][1]["value"] = 11010519491231002
    assert issues_of(bad) == [("Patient.identifier[1].value", "fhir-r4-structure")]


# --- identifier and code systems -----------------------------------------------------------------


def test_system_uris_are_distinct_and_per_facility_systems_are_keyed_by_uscc() -> None:
    from yilian.fhir import systems

    uris = {name: value for name, value in vars(systems).items() if name.isupper()}
    assert len(set(uris.values())) == len(uris)
    assert systems.mrn_system("91310000MA1FL4XX1X") == (
        "http://yilian.health/fhir/sid/mrn/91310000MA1FL4XX1X"
    )
    assert systems.local_lab_system("X").startswith(systems.LOCAL_LAB_PREFIX)


@pytest.mark.parametrize(
    ("resource", "issue_type"),
    [
        (with_change(PATIENT, active="yes"), "structure"),
        (with_change(PATIENT, nickname="Wei"), "structure"),
        ({"resourceType": "Observation", "code": {"text": "HR"}}, "required"),
        (with_change(PATIENT, gender="m"), "code-invalid"),
        (with_change(PATIENT, id="p_1"), "value"),
        ({"resourceType": "Nope"}, "not-supported"),
        (
            {"resourceType": "Patient", "identifier": [{"system": RESIDENT_ID, "value": "1"}]},
            "value",
        ),
    ],
)
def test_issue_types_follow_the_fhir_issue_type_codes(
    resource: dict[str, Any], issue_type: str
) -> None:
    [issue] = find_issues(resource)
    assert issue.code == issue_type


def test_hostile_nesting_is_a_validation_issue_not_a_crash() -> None:
    extension: dict[str, Any] = {"url": "http://x", "valueString": "deep"}
    for _ in range(5000):
        extension = {"url": "http://x", "extension": [extension]}
    [issue] = find_issues({"resourceType": "Patient", "extension": [extension]})
    assert (issue.rule, issue.code) == ("fhir-r4-structure", "too-costly")
