"""ViewDefinition model and validator (SQL on FHIR v2).

Rules come from the ViewDefinition StructureDefinition and its constraints:
https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html
Every error names the element (``select[1].column[0].path``) and the rule it breaks, so the
author of a view can fix it without reading our code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yilian.analytics.errors import ViewDefinitionError
from yilian.analytics.fhirpath import Literal, Node, parse

# ViewDefinition.select.column.name and constant.name: "^[A-Za-z][A-Za-z0-9_]*$" (sql-name).
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESOURCE = re.compile(r"^[A-Z][A-Za-z]+$")

# FHIR primitive types allowed as constant values (ViewDefinition.constant.value[x]) and the
# FHIRPath kind each one compiles to.
CONSTANT_KINDS: dict[str, str] = {
    "valueBase64Binary": "string",
    "valueBoolean": "boolean",
    "valueCanonical": "string",
    "valueCode": "string",
    "valueDate": "date",
    "valueDateTime": "datetime",
    "valueDecimal": "decimal",
    "valueId": "string",
    "valueInstant": "datetime",
    "valueInteger": "integer",
    "valueInteger64": "integer",
    "valueOid": "string",
    "valueString": "string",
    "valuePositiveInt": "integer",
    "valueTime": "time",
    "valueUnsignedInt": "integer",
    "valueUri": "string",
    "valueUrl": "string",
    "valueUuid": "string",
}


@dataclass(frozen=True)
class Column:
    element: str
    name: str
    path: Node
    type: str | None
    collection: bool | None


@dataclass(frozen=True)
class Select:
    element: str
    columns: tuple[Column, ...]
    selects: tuple[Select, ...]
    union_all: tuple[Select, ...]
    for_each: Node | None
    for_each_or_null: Node | None
    repeat: tuple[Node, ...]

    def column_names(self) -> list[str]:
        """Output columns in the order the spec fixes: column, then select, then unionAll."""
        names = [c.name for c in self.columns]
        for sub in self.selects:
            names.extend(sub.column_names())
        if self.union_all:
            names.extend(self.union_all[0].column_names())
        return names

    def all_columns(self) -> list[Column]:
        cols = list(self.columns)
        for sub in self.selects:
            cols.extend(sub.all_columns())
        if self.union_all:
            cols.extend(self.union_all[0].all_columns())
        return cols


@dataclass(frozen=True)
class Where:
    element: str
    path: Node


@dataclass(frozen=True)
class ViewDefinition:
    resource: str
    name: str | None
    constants: Mapping[str, Literal]
    select: tuple[Select, ...]
    where: tuple[Where, ...]

    def column_names(self) -> list[str]:
        names: list[str] = []
        for sel in self.select:
            names.extend(sel.column_names())
        return names

    def columns(self) -> list[Column]:
        cols: list[Column] = []
        for sel in self.select:
            cols.extend(sel.all_columns())
        return cols


def _require_list(value: object, element: str) -> list[Any]:
    if not isinstance(value, list):
        raise ViewDefinitionError(element, f"must be an array, got {type(value).__name__}")
    return value


def _require_object(value: object, element: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ViewDefinitionError(element, f"must be an object, got {type(value).__name__}")
    return value


def _path(value: object, element: str) -> Node:
    if not isinstance(value, str):
        raise ViewDefinitionError(element, f"must be a FHIRPath string, got {type(value).__name__}")
    return parse(value, element)


def _column(raw: object, element: str) -> Column:
    obj = _require_object(raw, element)
    name = obj.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ViewDefinitionError(
            f"{element}.name", "is required and must match ^[A-Za-z][A-Za-z0-9_]*$"
        )
    if "path" not in obj:
        raise ViewDefinitionError(f"{element}.path", "is required")
    col_type = obj.get("type")
    if col_type is not None and not isinstance(col_type, str):
        raise ViewDefinitionError(f"{element}.type", "must be a FHIR type name (string)")
    collection = obj.get("collection")
    if collection is not None and not isinstance(collection, bool):
        raise ViewDefinitionError(f"{element}.collection", "must be true or false")
    return Column(element, name, _path(obj["path"], f"{element}.path"), col_type, collection)


def _select(raw: object, element: str) -> Select:
    obj = _require_object(raw, element)
    iterators = [k for k in ("forEach", "forEachOrNull", "repeat") if k in obj]
    if len(iterators) > 1:
        raise ViewDefinitionError(
            element, f"may have only one of forEach, forEachOrNull, repeat (found {iterators})"
        )
    columns = tuple(
        _column(c, f"{element}.column[{i}]")
        for i, c in enumerate(_require_list(obj.get("column", []), f"{element}.column"))
    )
    selects = tuple(
        _select(s, f"{element}.select[{i}]")
        for i, s in enumerate(_require_list(obj.get("select", []), f"{element}.select"))
    )
    union_all = tuple(
        _select(s, f"{element}.unionAll[{i}]")
        for i, s in enumerate(_require_list(obj.get("unionAll", []), f"{element}.unionAll"))
    )
    if union_all:
        first = union_all[0].column_names()
        for i, branch in enumerate(union_all[1:], start=1):
            if branch.column_names() != first:
                raise ViewDefinitionError(
                    f"{element}.unionAll[{i}]",
                    "every unionAll branch must have the same column names in the same order "
                    f"(expected {first}, got {branch.column_names()})",
                )
    repeat: tuple[Node, ...] = ()
    if "repeat" in obj:
        paths = _require_list(obj["repeat"], f"{element}.repeat")
        if not paths:
            raise ViewDefinitionError(f"{element}.repeat", "must list at least one path")
        repeat = tuple(_path(p, f"{element}.repeat[{i}]") for i, p in enumerate(paths))
    return Select(
        element=element,
        columns=columns,
        selects=selects,
        union_all=union_all,
        for_each=_path(obj["forEach"], f"{element}.forEach") if "forEach" in obj else None,
        for_each_or_null=(
            _path(obj["forEachOrNull"], f"{element}.forEachOrNull")
            if "forEachOrNull" in obj
            else None
        ),
        repeat=repeat,
    )


def _constant(raw: object, element: str) -> tuple[str, Literal]:
    obj = _require_object(raw, element)
    name = obj.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ViewDefinitionError(
            f"{element}.name", "is required and must match ^[A-Za-z][A-Za-z0-9_]*$"
        )
    values = [k for k in obj if k.startswith("value")]
    if len(values) != 1 or values[0] not in CONSTANT_KINDS:
        raise ViewDefinitionError(
            element,
            f"constant {name!r} needs exactly one value[x] of a FHIR primitive type "
            f"(found {values or 'none'})",
        )
    key = values[0]
    kind = CONSTANT_KINDS[key]
    value = obj[key]
    if kind == "decimal":
        value = repr(value) if isinstance(value, float) else str(value)
    return name, Literal(value, kind)


def validate_view(raw: object) -> ViewDefinition:
    """Check ``raw`` against the ViewDefinition rules and return the typed view.

    Raises ``ViewDefinitionError`` naming the first offending element and the rule.
    """
    view = _require_object(raw, "ViewDefinition")
    resource = view.get("resource")
    if not isinstance(resource, str) or not _RESOURCE.match(resource):
        raise ViewDefinitionError(
            "ViewDefinition.resource", "is required and must be a FHIR resource type name"
        )
    selects_raw = _require_list(view.get("select"), "ViewDefinition.select")
    if not selects_raw:
        raise ViewDefinitionError("ViewDefinition.select", "must contain at least one select")
    constants: dict[str, Literal] = {}
    for i, c in enumerate(_require_list(view.get("constant", []), "constant")):
        name, lit = _constant(c, f"constant[{i}]")
        if name in constants:
            raise ViewDefinitionError(f"constant[{i}].name", f"duplicate constant {name!r}")
        constants[name] = lit
    selects = tuple(_select(s, f"select[{i}]") for i, s in enumerate(selects_raw))
    wheres: list[Where] = []
    for i, w in enumerate(_require_list(view.get("where", []), "where")):
        obj = _require_object(w, f"where[{i}]")
        if "path" not in obj:
            raise ViewDefinitionError(f"where[{i}].path", "is required")
        wheres.append(Where(f"where[{i}].path", _path(obj["path"], f"where[{i}].path")))
    result = ViewDefinition(
        resource=resource,
        name=view.get("name") if isinstance(view.get("name"), str) else None,
        constants=constants,
        select=selects,
        where=tuple(wheres),
    )
    seen: dict[str, str] = {}
    for col in result.columns():
        if col.name in seen:
            raise ViewDefinitionError(
                f"{col.element}.name",
                f"column name {col.name!r} is already used by {seen[col.name]}; names must be "
                "unique within a view",
            )
        seen[col.name] = col.element
    return result
