"""Validation of every incoming FHIR R4 (4.0.1) resource.

The store calls ``validate_resource`` on every create and update, bulk loads included. It checks,
in one pass over the JSON (docs/decisions/0002-fhir-r4-validation.md):

1. structure against the R4 models of fhirclient 4.4.0 (elements, types, cardinality, choice
   types, date formats), nested resources included; resource ids; the type in the URL;
2. required code bindings derived from the R4 definitions (``required_bindings.json``);
3. yilian's identifier rules (``identity.py``).
"""

from __future__ import annotations

from typing import Any

from yilian.fhir.errors import Issue, ValidationFailed
from yilian.fhir.validation.identity import check_identity
from yilian.fhir.validation.schema import resource_classes, skipped_value_sets
from yilian.fhir.validation.walker import check_resource, json_type

RESOURCE_TYPE_MISMATCH = "resource-type-mismatch"

__all__ = [
    "find_issues",
    "resource_types",
    "skipped_value_sets",
    "validate_resource",
]


def validate_resource(resource: dict[str, Any], *, expected_type: str | None = None) -> None:
    """Raise ``ValidationFailed(issues)`` (HTTP 422) listing every problem found.

    ``expected_type`` is the type named in the request URL; it must equal ``resourceType``.
    """
    issues = find_issues(resource, expected_type=expected_type)
    if issues:
        raise ValidationFailed(issues)


def find_issues(resource: Any, *, expected_type: str | None = None) -> list[Issue]:
    """Every problem in ``resource``, in document order; empty when it is valid."""
    if type(resource) is not dict:
        return [
            Issue(
                f"A resource is a JSON object, got {json_type(resource)}",
                code="structure",
                rule="fhir-r4-structure",
            )
        ]
    issues: list[Issue] = []
    actual = resource.get("resourceType")
    if expected_type is not None and actual != expected_type:
        issues.append(
            Issue(
                f"The URL names {expected_type} but the body's resourceType is {actual!r}",
                expression="resourceType",
                rule=RESOURCE_TYPE_MISMATCH,
            )
        )
    try:
        check_resource(resource, "", issues)
    except RecursionError:
        # Only a hostile payload nests hundreds of levels (extension in extension ...): answer
        # with a 422 naming the problem rather than a 500.
        issues.append(
            Issue(
                "The resource is nested too deeply to validate",
                code="too-costly",
                expression=str(actual),
                rule="fhir-r4-structure",
            )
        )
    check_identity(resource, issues)
    return issues


def resource_types() -> frozenset[str]:
    """The names of all R4 resource types the validator knows."""
    return frozenset(resource_classes())
