"""The registry of R4 search parameters: which a resource type has and how to extract them.

Derived from HL7's ``Bundle-searchParams.json`` (hl7.fhir.r4.examples 4.0.1) by
``scripts/gen_search_parameters.py``; never hand-written, so it cannot drift from the standard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# Parameters defined for Resource/DomainResource that the store handles itself (not by FHIRPath).
SPECIAL_PARAMETERS = frozenset({"_content", "_text", "_query", "_list", "_has", "_type"})


@dataclass(frozen=True)
class Component:
    code: str
    expression: str


@dataclass(frozen=True)
class SearchParamDef:
    code: str
    type: str  # number | date | string | token | reference | composite | quantity | uri | special
    expression: str  # FHIRPath, restricted to the base resource type
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()


@cache
def _raw() -> dict[str, dict[str, dict[str, Any]]]:
    text = resources.files("yilian.fhir.searchparams").joinpath("r4.json").read_text("utf-8")
    data: dict[str, dict[str, dict[str, Any]]] = json.loads(text)
    return data


def _definition(code: str, item: dict[str, Any]) -> SearchParamDef:
    return SearchParamDef(
        code=code,
        type=item["type"],
        expression=item.get("expression", ""),
        targets=tuple(item.get("target", ())),
        components=tuple(Component(c["code"], c["expression"]) for c in item.get("component", ())),
    )


@cache
def params_for(resource_type: str) -> dict[str, SearchParamDef]:
    """All search parameters of a resource type, the common ``Resource`` ones included."""
    raw = _raw()
    merged: dict[str, SearchParamDef] = {}
    for base in ("Resource", "DomainResource", resource_type):
        for code, item in raw.get(base, {}).items():
            if code in SPECIAL_PARAMETERS:
                continue
            definition = _definition(code, item)
            if base in ("Resource", "DomainResource"):
                expression = definition.expression.replace("Resource.", f"{resource_type}.", 1)
                definition = SearchParamDef(code, definition.type, expression)
            merged[code] = definition
    return merged


def get(resource_type: str, code: str) -> SearchParamDef | None:
    return params_for(resource_type).get(code)


@cache
def resource_types() -> frozenset[str]:
    """Every concrete R4 resource type that has search parameters of its own."""
    return frozenset(k for k in _raw() if k not in ("Resource", "DomainResource"))
