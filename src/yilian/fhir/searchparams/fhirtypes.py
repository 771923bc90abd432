"""R4 element types: what FHIR type sits at ``Type.element`` and which choice types ``x[x]`` has.

Read from the R4 model tables that ship with fhirpathpy (``fhirpathpy/models/r4``: path2Type,
choiceTypePaths, pathsDefinedElsewhere, type2Parent), which fhirpathpy itself derives from the R4
StructureDefinitions — one source for both our compiled paths and the fhirpathpy fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from fhirpathpy.models import models

PRIMITIVES = frozenset(
    {
        "base64Binary",
        "boolean",
        "canonical",
        "code",
        "date",
        "dateTime",
        "decimal",
        "id",
        "instant",
        "integer",
        "markdown",
        "oid",
        "positiveInt",
        "string",
        "time",
        "unsignedInt",
        "uri",
        "url",
        "uuid",
        "xhtml",
    }
)
BACKBONE = "BackboneElement"


@dataclass(frozen=True)
class ElementType:
    """One possible type of an element: its JSON key and FHIR type.

    ``model_path`` is where the element's own children are looked up: the type name for a data
    type (``HumanName``), the element path for a backbone element (``Encounter.participant``).
    """

    json_key: str
    fhir_type: str
    model_path: str


def _model() -> dict[str, Any]:
    model: dict[str, Any] = models["r4"]
    return model


def type_name(model_name: str) -> str:
    """FHIR type name from a model's name: ``DateTime`` (choice suffix) → ``dateTime``."""
    if model_name == "System.String":  # Element.id, Extension.url
        return "string"
    lowered = model_name[:1].lower() + model_name[1:]
    return lowered if lowered in PRIMITIVES else model_name


@cache
def _backbone_paths() -> frozenset[str]:
    paths: set[str] = set()
    for path in _model()["path2Type"]:
        parts = path.split(".")
        for end in range(2, len(parts)):
            paths.add(".".join(parts[:end]))
    return frozenset(paths)


def _canonical_path(path: str) -> str:
    elsewhere: dict[str, str] = _model()["pathsDefinedElsewhere"]
    return elsewhere.get(path, path)


def element_types(model_path: str, name: str) -> tuple[ElementType, ...] | None:
    """The types of element ``name`` of ``model_path``; None if there is no such element."""
    path = f"{_canonical_path(model_path)}.{name}"
    model = _model()
    choices: list[str] | None = model["choiceTypePaths"].get(path)
    if choices is not None:
        return tuple(ElementType(name + choice, type_name(choice), choice) for choice in choices)
    found: str | None = model["path2Type"].get(path)
    if found is not None:
        fhir_type = type_name(found)
        return (ElementType(name, fhir_type, fhir_type),)
    canonical = _canonical_path(path)
    if canonical in _backbone_paths():
        return (ElementType(name, BACKBONE, canonical),)
    return None


def is_a(fhir_type: str, wanted: str) -> bool:
    """FHIRPath ``is``: the type itself or one of its ancestors (Age is a Quantity)."""
    parents: dict[str, str] = _model()["type2Parent"]
    current: str | None = fhir_type
    wanted_name = type_name(wanted)
    while current is not None:
        if current == wanted_name:
            return True
        current = parents.get(current)
    return False


def is_resource_type(name: str) -> bool:
    parents: dict[str, str] = _model()["type2Parent"]
    return parents.get(name) in ("DomainResource", "Resource") or name in ("Bundle", "Binary")
