"""Bad ViewDefinitions are rejected with the element path and the rule."""

from __future__ import annotations

from typing import Any

import pytest

from yilian.analytics.compiler import compile_view
from yilian.analytics.errors import ViewDefinitionError
from yilian.analytics.viewdef import validate_view

ID = {"name": "id", "path": "id", "type": "id"}


@pytest.mark.parametrize(
    ("view", "element", "rule"),
    [
        ({}, "ViewDefinition.resource", "is required"),
        ({"resource": "Patient"}, "ViewDefinition.select", "must be an array"),
        (
            {"resource": "Patient", "select": [{"column": [ID, {"name": "x", "path": 1}]}]},
            "select[0].column[1].path",
            "FHIRPath string",
        ),
        (
            {"resource": "Patient", "select": [{"column": [ID]}, {"forEach": "@@"}]},
            "select[1].forEach",
            "FHIRPath syntax",
        ),
        (
            {"resource": "Patient", "select": [{"column": [ID, {"name": "1x", "path": "id"}]}]},
            "select[0].column[1].name",
            "^[A-Za-z]",
        ),
        (
            {"resource": "Patient", "select": [{"column": [ID]}, {"column": [ID]}]},
            "select[1].column[0].name",
            "unique",
        ),
        (
            {
                "resource": "Patient",
                "select": [{"unionAll": [{"column": [ID]}, {"column": [{**ID, "name": "b"}]}]}],
            },
            "select[0].unionAll[1]",
            "same column names",
        ),
        (
            {"resource": "Patient", "constant": [{"name": "c"}], "select": [{"column": [ID]}]},
            "constant[0]",
            "exactly one value[x]",
        ),
        (
            {"resource": "Patient", "select": [{"forEach": "name", "forEachOrNull": "name"}]},
            "select[0]",
            "only one of",
        ),
        # Top level.
        ({"resource": "Patinet", "select": [{"column": [ID]}]}, "ViewDefinition.resource",
         "not a FHIR R4 resource type"),
        ({"resource": "Patient", "status": "final", "select": [{"column": [ID]}]},
         "ViewDefinition.status", "one of"),
        ({"resource": "Patient", "name": "my view", "select": [{"column": [ID]}]},
         "ViewDefinition.name", "^[A-Za-z]"),
        ({"resourceType": "Library", "resource": "Patient", "select": [{"column": [ID]}]},
         "ViewDefinition.resourceType", "ViewDefinition"),
        ({"resource": "Patient", "selects": [], "select": [{"column": [ID]}]},
         "ViewDefinition.selects", "not an element"),
        ({"resource": "Patient", "select": []}, "ViewDefinition.select", "at least one"),
        ({"resource": "Patient", "select": {"column": [ID]}}, "ViewDefinition.select",
         "must be an array"),
        ({"resource": "Patient", "title": 3, "select": [{"column": [ID]}]},
         "ViewDefinition.title", "string"),
        # select.
        ({"resource": "Patient", "select": ["id"]}, "select[0]", "must be an object"),
        ({"resource": "Patient", "select": [{"colum": [ID]}]}, "select[0].colum",
         "not an element"),
        ({"resource": "Patient", "select": [{"column": ID}]}, "select[0].column",
         "must be an array"),
        ({"resource": "Patient", "select": [{"repeat": []}]}, "select[0].repeat", "at least one"),
        ({"resource": "Patient", "select": [{"repeat": ["item", 3]}]}, "select[0].repeat[1]",
         "FHIRPath string"),
        ({"resource": "Patient", "select": [{"forEachOrNull": "name.("}]},
         "select[0].forEachOrNull", "FHIRPath"),
        ({"resource": "Patient", "select": [{"select": [{"column": [{"name": "x"}]}]}]},
         "select[0].select[0].column[0].path", "is required"),
        ({"resource": "Patient", "select": [{"unionAll": "x"}]}, "select[0].unionAll",
         "must be an array"),
        # column.
        ({"resource": "Patient", "select": [{"column": [{"path": "id"}]}]},
         "select[0].column[0].name", "is required"),
        ({"resource": "Patient", "select": [{"column": [{**ID, "type": "strnig"}]}]},
         "select[0].column[0].type", "FHIR primitive type"),
        ({"resource": "Patient", "select": [{"column": [{**ID, "collection": "yes"}]}]},
         "select[0].column[0].collection", "true or false"),
        ({"resource": "Patient", "select": [{"column": [{**ID, "tag": [{"name": "ansi"}]}]}]},
         "select[0].column[0].tag[0].value", "is required"),
        ({"resource": "Patient", "select": [{"column": [{**ID, "descripton": "x"}]}]},
         "select[0].column[0].descripton", "not an element"),
        ({"resource": "Patient", "select": [{"column": [{**ID, "description": 1}]}]},
         "select[0].column[0].description", "string"),
        # where.
        ({"resource": "Patient", "select": [{"column": [ID]}], "where": [{}]}, "where[0].path",
         "is required"),
        ({"resource": "Patient", "select": [{"column": [ID]}], "where": [{"path": "a and"}]},
         "where[0].path", "FHIRPath"),
        ({"resource": "Patient", "select": [{"column": [ID]}], "where": {"path": "active"}},
         "where", "must be an array"),
        # constant: name and the JSON type / lexical form of value[x].
        ({"resource": "Patient", "constant": [{"name": "c", "valueInteger": "1; DROP"}],
          "select": [{"column": [ID]}]}, "constant[0].valueInteger", "JSON integer"),
        ({"resource": "Patient", "constant": [{"name": "c", "valueBoolean": "true"}],
          "select": [{"column": [ID]}]}, "constant[0].valueBoolean", "true or false"),
        ({"resource": "Patient", "constant": [{"name": "c", "valueDecimal": "1,5"}],
          "select": [{"column": [ID]}]}, "constant[0].valueDecimal", "decimal"),
        ({"resource": "Patient", "constant": [{"name": "c", "valuePositiveInt": 0}],
          "select": [{"column": [ID]}]}, "constant[0].valuePositiveInt", "[1, "),
        ({"resource": "Patient", "constant": [{"name": "c", "valueDate": "2020-13"}],
          "select": [{"column": [ID]}]}, "constant[0].valueDate", "not a valid Date"),
        ({"resource": "Patient", "constant": [{"name": "c", "valueString": 5}],
          "select": [{"column": [ID]}]}, "constant[0].valueString", "JSON string"),
        ({"resource": "Patient", "constant": [{"name": "c", "valueReference": {}}],
          "select": [{"column": [ID]}]}, "constant[0]", "FHIR primitive type"),
        ({"resource": "Patient", "constant": [{"name": "2c", "valueString": "x"}],
          "select": [{"column": [ID]}]}, "constant[0].name", "^[A-Za-z]"),
        ({"resource": "Patient", "constant": [{"name": "c", "valueString": "x"},
          {"name": "c", "valueString": "y"}], "select": [{"column": [ID]}]},
         "constant[1].name", "duplicate"),
        ({"resource": "Patient", "constant": [{"name": "c", "valueString": "x", "note": 1}],
          "select": [{"column": [ID]}]}, "constant[0].note", "not an element"),
    ],
)  # fmt: skip
def test_invalid_views_name_element_and_rule(view: Any, element: str, rule: str) -> None:
    with pytest.raises(ViewDefinitionError) as info:
        validate_view(view)
    assert info.value.element == element
    assert rule in info.value.rule


def test_valid_metadata_and_every_constant_type_are_accepted() -> None:
    view = {
        "resourceType": "ViewDefinition",
        "url": "http://example.org/v",
        "name": "v_1",
        "title": "V",
        "status": "draft",
        "description": "all elements",
        "resource": "Patient",
        "constant": [
            {"name": "b", "valueBoolean": False},
            {"name": "i", "valueInteger": -3},
            {"name": "d", "valueDecimal": 1.25},
            {"name": "dt", "valueDateTime": "2020-01-02T03:04:05+08:00"},
            {"name": "oid", "valueOid": "urn:oid:2.16.156.10011"},
        ],
        "select": [
            {
                "column": [
                    {**ID, "description": "key", "tag": [{"name": "ansi/type", "value": "V"}]}
                ],
                "forEach": "name",
            }
        ],
        "where": [{"path": "active", "description": "active ones"}],
    }
    assert validate_view(view).column_names() == ["id"]


def test_undefined_constant_names_the_path() -> None:
    view = {"resource": "Patient", "select": [{"column": [{"name": "n", "path": "%nope"}]}]}
    with pytest.raises(ViewDefinitionError) as info:
        compile_view(view, "duckdb")
    assert info.value.element == "select[0].column[0].path"
    assert "%nope" in info.value.rule


def test_non_boolean_literal_where_is_rejected_before_running() -> None:
    view = {"resource": "Patient", "select": [{"column": [ID]}], "where": [{"path": "'x'"}]}
    with pytest.raises(ViewDefinitionError) as info:
        compile_view(view, "spark")
    assert info.value.element == "where[0].path"
