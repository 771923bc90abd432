"""The R4 structure, compiled once from fhirclient's models and the required-binding data.

fhirclient 4.4.0 generated its R4 model classes from the 4.0.1 StructureDefinitions; each class
lists its elements in ``elementProperties()`` as (python name, JSON name, type, is list, choice
group, required). Instantiating those classes validates, but builds a Python object per element
(about 3,800 Synthea resources/s on one core here) and reports Python attribute names rather than
element paths. We compile the same metadata into plain lookup tables instead, walk the JSON once
(``walker.py``) and check the required bindings on the way (see
docs/decisions/0002-fhir-r4-validation.md).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cache
from importlib import resources
from typing import Any

import fhirclient.models as fc_models
from fhirclient.models import fhirabstractbase, fhirdate, resource


class Kind(IntEnum):
    """How the walker checks one JSON value."""

    ELEMENT = 0  # a complex type or backbone element: a JSON object checked against a Node
    RESOURCE = 1  # a nested resource (contained, Bundle.entry.resource): typed by its resourceType
    STRING = 2  # string, code, uri, id, markdown, base64Binary, xhtml, ...
    BOOLEAN = 3
    INTEGER = 4  # integer, positiveInt, unsignedInt
    DECIMAL = 5
    DATE = 6  # date, dateTime, instant, time: fhirclient's regex and calendar check


@dataclass(frozen=True)
class Binding:
    """A required binding whose value set could be expanded from the R4 package."""

    value_set: str
    by_system: dict[str, frozenset[str]]
    codes: frozenset[str]  # every code of the value set, whatever its system (for ``code``)


@dataclass
class Field:
    json_name: str
    kind: Kind
    is_list: bool
    node: Node | None = None  # for Kind.ELEMENT
    date_type: type[fhirdate.FHIRDate] | None = None  # for Kind.DATE
    type_name: str = ""  # the FHIR type, for messages
    binding: Binding | None = None
    choice: str | None = None  # ``value[x]`` for ``valueString``: at most one per choice element


@dataclass
class Node:
    """One complex type, backbone element or resource: its JSON keys and their rules."""

    path: str  # the element definition path, e.g. ``Patient.contact`` or ``HumanName``
    fields: dict[str, Field] = field(default_factory=dict)
    # required element (``status``, ``value[x]``) -> the JSON keys that satisfy it; ``_status``
    # (only extensions, e.g. data-absent-reason) counts as present, as in the JSON format spec.
    required: dict[str, tuple[str, ...]] = field(default_factory=dict)
    is_resource: bool = False


_PRIMITIVES = {str: Kind.STRING, bool: Kind.BOOLEAN, int: Kind.INTEGER, float: Kind.DECIMAL}


@cache
def _binding_data() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("required_bindings.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _binding(url: str) -> Binding:
    systems = _binding_data()["valueSets"][url]
    by_system = {system: frozenset(codes) for system, codes in systems.items()}
    codes = frozenset(c for group in by_system.values() for c in group)
    return Binding(url, by_system, codes)


@cache
def resource_classes() -> dict[str, type[resource.Resource]]:
    """Every concrete R4 resource type fhirclient models, by its resourceType."""
    found: dict[str, type[resource.Resource]] = {}
    for info in pkgutil.iter_modules(fc_models.__path__):
        module = importlib.import_module(f"{fc_models.__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, resource.Resource)
                and getattr(value, "resource_type", None) == value.__name__
                and value.__name__ not in ("Resource", "DomainResource", "MetadataResource")
            ):
                found[value.__name__] = value
    return found


class _Compiler:
    def __init__(self) -> None:
        data = _binding_data()
        self.bindings: dict[str, str] = data["bindings"]
        self.references: dict[str, str] = data["contentReferences"]
        self.types = frozenset(data["types"])
        self.nodes: dict[tuple[type, str], Node] = {}

    def node(self, cls: type[fhirabstractbase.FHIRAbstractBase], path: str) -> Node:
        key = (cls, path)
        if key in self.nodes:
            return self.nodes[key]
        node = Node(path, is_resource=issubclass(cls, resource.Resource))
        self.nodes[key] = node  # registered before filling: backbone elements can recurse
        for _name, json_name, typ, is_list, of_many, required in cls().elementProperties():
            element = f"{of_many}[x]" if of_many else json_name
            compiled = self.field(json_name, typ, is_list, f"{path}.{element}")
            compiled.choice = element if of_many else None
            node.fields[json_name] = compiled
            if required:
                keys = node.required.get(element, ())
                node.required[element] = (*keys, json_name, f"_{json_name}")
        return node

    def field(self, json_name: str, typ: type, is_list: bool, element_path: str) -> Field:
        url = self.bindings.get(element_path)
        binding = _binding(url) if url else None
        if typ in _PRIMITIVES:
            return Field(
                json_name, _PRIMITIVES[typ], is_list, type_name=typ.__name__, binding=binding
            )
        if issubclass(typ, fhirdate.FHIRDate):
            fhir_name = typ.__name__[4].lower() + typ.__name__[5:]  # FHIRDateTime -> dateTime
            return Field(json_name, Kind.DATE, is_list, date_type=typ, type_name=fhir_name)
        if issubclass(typ, resource.Resource):
            return Field(json_name, Kind.RESOURCE, is_list, type_name="Resource")
        type_name = str(getattr(typ, "resource_type", typ.__name__))
        if type_name in self.types:
            child_path = type_name  # a data type: its own definition applies
        else:  # a backbone element, possibly reusing another element's definition
            child_path = self.references.get(element_path, element_path)
        child = self.node(typ, child_path)
        return Field(json_name, Kind.ELEMENT, is_list, child, type_name=type_name, binding=binding)


@cache
def _resource_nodes() -> dict[str, Node]:
    """All resource types compiled at once (about 60 ms), before any is handed out.

    Compiling lazily per type would let a second thread see a node still being filled in (and
    report valid elements as unknown); a complete table is only published when it is done.
    """
    compiler = _Compiler()
    return {name: compiler.node(cls, name) for name, cls in resource_classes().items()}


def resource_node(resource_type: str) -> Node | None:
    """The compiled definition of a resource type, or None if R4 has no such resource."""
    return _resource_nodes().get(resource_type)


def skipped_value_sets() -> dict[str, str]:
    """Required value sets not checked because they need an external terminology, with why."""
    skipped: dict[str, str] = _binding_data()["skipped"]
    return skipped
