"""yilian's identifier rules, applied on top of the R4 structure.

A resident identity number stored under ``systems.RESIDENT_ID`` is what the patient index matches
people on, so a typo there would split or merge people: it must pass GB 11643-1999
(``yilian.mpi.resident_id``; docs/identifiers.md).
"""

from __future__ import annotations

from typing import Any

from yilian.fhir.errors import Issue
from yilian.fhir.systems import RESIDENT_ID
from yilian.mpi.resident_id import ResidentIdError, parse_resident_id

# The person resources whose identifiers can carry a resident identity number.
PERSON_TYPES = frozenset({"Patient", "Practitioner", "RelatedPerson"})


def check_identity(resource: dict[str, Any], issues: list[Issue]) -> None:
    resource_type = resource.get("resourceType")
    identifiers = resource.get("identifier")
    if resource_type not in PERSON_TYPES or type(identifiers) is not list:
        return
    for index, identifier in enumerate(identifiers):
        if type(identifier) is not dict or identifier.get("system") != RESIDENT_ID:
            continue
        value = identifier.get("value")
        path = f"{resource_type}.identifier[{index}].value"
        if type(value) is not str:
            if value is None and "_value" not in identifier:
                issues.append(
                    Issue(
                        "An identifier with the resident-ID system needs a value",
                        code="required",
                        expression=path,
                        rule="required-element",
                    )
                )
            continue  # a wrong type was already reported by the structure check
        try:
            parse_resident_id(value)
        except ResidentIdError as exc:
            issues.append(Issue(str(exc), code="value", expression=path, rule=exc.rule))
