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
    ],
)
def test_invalid_views_name_element_and_rule(view: Any, element: str, rule: str) -> None:
    with pytest.raises(ViewDefinitionError) as info:
        validate_view(view)
    assert info.value.element == element
    assert rule in info.value.rule


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
