"""FHIRPath member chains resolved against the R4 structure, for direct JSON-path extraction.

The generic compiler treats every element as a collection of unknown shape (object or array),
because FHIRPath navigation flattens either. In valid FHIR R4 JSON the shape is fixed by the
element's cardinality: an element with max > 1 is always a JSON array, any other element never
is (FHIR R4 §2.6.2 "JSON representation of resources",
https://hl7.org/fhir/R4/json.html#arrays). yilian's store validates that on every write
(docs/decisions/0002-fhir-r4-validation.md), so for a chain such as ``type.coding.code`` the
compiler can ask the engine for one JSON path (``$.type[*].coding[*].code``) instead of
building and flattening a list per step. The structure comes from the same compiled R4 tables
the validator uses (``yilian.fhir.validation.schema``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from yilian.analytics.fhirpath import Call, Member, Node
from yilian.fhir.validation.schema import Field, Kind, resource_node
from yilian.fhir.validation.schema import Node as R4Node

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class JsonPath:
    """Steps from the resource root to a primitive element, each ``(json name, is array)``."""

    steps: tuple[tuple[str, bool], ...]
    leaf: Kind

    @property
    def arrays(self) -> int:
        return sum(is_list for _, is_list in self.steps)


def member_names(node: Node | None) -> list[str] | None:
    """``a.b.c`` → ``[a, b, c]``; ``value.ofType(Quantity).value`` → ``[valueQuantity, value]``.

    ``ofType(T)`` on a member names the choice element ``memberT`` (FHIR R4 §2.6.2, choice
    types). Anything else (functions, $this, indexes) is not a plain chain: None.
    """
    if node is None:
        return []
    if isinstance(node, Member):
        base = member_names(node.base)
        return None if base is None else [*base, node.name]
    if (
        isinstance(node, Call)
        and node.name == "ofType"
        and isinstance(node.base, Member)
        and len(node.args) == 1
        and isinstance(node.args[0], Member)
        and node.args[0].base is None
    ):
        base = member_names(node.base.base)
        type_name = node.args[0].name
        choice = node.base.name + type_name[:1].upper() + type_name[1:]
        return None if base is None else [*base, choice]
    return None


def walk(node: R4Node | None, names: list[str]) -> tuple[list[tuple[str, bool]], Field] | None:
    """Steps ``(json name, is array)`` for ``names`` below the R4 ``node`` and the last step's
    definition, or None if a step is not an R4 element there."""
    steps: list[tuple[str, bool]] = []
    field: Field | None = None
    for name in names:
        if node is None or not _NAME.match(name):
            return None  # below a primitive (its id/extension) or an odd name
        field = node.fields.get(name)
        if field is None:
            return None
        steps.append((name, field.is_list))
        node = field.node
    return (steps, field) if field is not None else None


def resolve(resource_type: str, names: list[str]) -> JsonPath | None:
    """The JSON path of ``names`` in ``resource_type``, if every step is an R4 element and the
    last one is a primitive; else None (the caller keeps the generic collection SQL)."""
    found = walk(resource_node(resource_type), names)
    if found is None or found[1].kind in (Kind.ELEMENT, Kind.RESOURCE):
        return None
    return JsonPath(tuple(found[0]), found[1].kind)
