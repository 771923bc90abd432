"""yilian's identifier rules, applied on top of the R4 structure.

A resident identity number stored under ``systems.RESIDENT_ID`` is what the patient index matches
people on, so a typo there would split or merge people: it must pass GB 11643-1999
(``yilian.mpi.resident_id``; docs/identifiers.md). A legacy 15-digit number is checked in its
upgraded form; a number marked unverified is accepted as it is (docs/mpi.md "Bad input").
"""

from __future__ import annotations

from typing import Any

from yilian.fhir.errors import Issue
from yilian.fhir.systems import RESIDENT_ID
from yilian.mpi.resident_id import (
    UNVERIFIED_CODING,
    ResidentIdError,
    is_unverified,
    parse_resident_id,
    upgrade_legacy,
)

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
        if is_unverified(identifier):
            continue  # declared unverified: kept, never matched on (docs/identifiers.md)
        try:
            parse_resident_id(_modern(value))
        except ResidentIdError as exc:
            issues.append(Issue(str(exc), code="value", expression=path, rule=exc.rule))


def _modern(value: str) -> str:
    """A legacy 15-digit number (GB 11643-1989, issued until 1999 and still met) in its
    18-character form, so its region and birth date are checked; any other value as it is."""
    if len(value) == 15 and value.isascii() and value.isdigit():
        return upgrade_legacy(value)
    return value


def mark_unverified_resident_ids(resource: dict[str, Any]) -> None:
    """Accept-as-unverified mode (``YILIAN_RESIDENT_IDS=unverified``): a resident ID that breaks
    a GB 11643 rule is kept, marked with the ``unverified`` Identifier.type coding, instead of
    refusing the write; the patient index never matches on it."""
    if resource.get("resourceType") not in PERSON_TYPES:
        return
    for identifier in resource.get("identifier") or []:
        if type(identifier) is not dict or identifier.get("system") != RESIDENT_ID:
            continue
        value = identifier.get("value")
        if type(value) is not str or is_unverified(identifier):
            continue
        try:
            parse_resident_id(_modern(value))
        except ResidentIdError:
            kind = dict(identifier.get("type") or {})
            kind["coding"] = [*(kind.get("coding") or []), dict(UNVERIFIED_CODING)]
            identifier["type"] = kind
