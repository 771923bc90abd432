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
from yilian.fhir.validation import resource_types

# ViewDefinition.select.column.name and constant.name: "^[A-Za-z][A-Za-z0-9_]*$" (sql-name).
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESOURCE = re.compile(r"^[A-Z][A-Za-z]+$")
# ViewDefinition.status: PublicationStatus (required binding).
_STATUS = frozenset({"draft", "active", "retired", "unknown"})
# Column.type: a FHIR StructureDefinition URI; relative names are FHIR R4 primitive types
# (columns hold primitive values). http://hl7.org/fhir/R4/datatypes.html#primitive
PRIMITIVE_TYPES = frozenset({
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
    "instant", "integer", "integer64", "markdown", "oid", "positiveInt", "string", "time",
    "unsignedInt", "uri", "url", "uuid",
})  # fmt: skip
_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")

# The elements each part of a ViewDefinition may carry (SQL on FHIR v2 StructureDefinition;
# id/extension/modifierExtension from Element, the metadata from the canonical resource
# pattern). Anything else is most likely a typo (``colum``) that would silently drop columns.
_ELEMENT = frozenset({"id", "extension", "modifierExtension"})
_TOP_ELEMENTS = _ELEMENT | frozenset({
    "resourceType", "meta", "implicitRules", "language", "text", "contained", "url",
    "identifier", "version", "name", "title", "status", "experimental", "date", "publisher",
    "contact", "description", "useContext", "jurisdiction", "purpose", "copyright",
    "resource", "fhirVersion", "constant", "select", "where",
})  # fmt: skip
_SELECT_ELEMENTS = _ELEMENT | frozenset(
    {"column", "select", "unionAll", "forEach", "forEachOrNull", "repeat"}
)
_COLUMN_ELEMENTS = _ELEMENT | frozenset(
    {"name", "path", "type", "collection", "description", "tag"}
)
_WHERE_ELEMENTS = _ELEMENT | frozenset({"path", "description"})
_CONSTANT_ELEMENTS = _ELEMENT | frozenset({"name"})
_TAG_ELEMENTS = _ELEMENT | frozenset({"name", "value"})

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


def _known_elements(obj: Mapping[str, Any], allowed: frozenset[str], element: str) -> None:
    for key in obj:
        if key not in allowed and not (allowed is _CONSTANT_ELEMENTS and key.startswith("value")):
            raise ViewDefinitionError(
                f"{element}.{key}" if element != "ViewDefinition" else f"ViewDefinition.{key}",
                f"is not an element of a ViewDefinition here (allowed: {sorted(allowed)})",
            )


def _optional_string(obj: Mapping[str, Any], key: str, element: str) -> None:
    if key in obj and not isinstance(obj[key], str):
        raise ViewDefinitionError(f"{element}.{key}", "must be a string")


def _path(value: object, element: str) -> Node:
    if not isinstance(value, str):
        raise ViewDefinitionError(element, f"must be a FHIRPath string, got {type(value).__name__}")
    return parse(value, element)


def _column(raw: object, element: str) -> Column:
    obj = _require_object(raw, element)
    _known_elements(obj, _COLUMN_ELEMENTS, element)
    name = obj.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ViewDefinitionError(
            f"{element}.name", "is required and must match ^[A-Za-z][A-Za-z0-9_]*$"
        )
    if "path" not in obj:
        raise ViewDefinitionError(f"{element}.path", "is required")
    col_type = obj.get("type")
    if col_type is not None and (
        not isinstance(col_type, str)
        or (col_type not in PRIMITIVE_TYPES and not _ABSOLUTE_URI.match(col_type))
    ):
        raise ViewDefinitionError(
            f"{element}.type",
            f"must be a FHIR primitive type name ({', '.join(sorted(PRIMITIVE_TYPES))}) or an "
            f"absolute StructureDefinition URI, got {col_type!r}",
        )
    _optional_string(obj, "description", element)
    for i, tag in enumerate(_require_list(obj.get("tag", []), f"{element}.tag")):
        tag_obj = _require_object(tag, f"{element}.tag[{i}]")
        _known_elements(tag_obj, _TAG_ELEMENTS, f"{element}.tag[{i}]")
        for key in ("name", "value"):
            if not isinstance(tag_obj.get(key), str):
                raise ViewDefinitionError(f"{element}.tag[{i}].{key}", "is required (a string)")
    collection = obj.get("collection")
    if collection is not None and not isinstance(collection, bool):
        raise ViewDefinitionError(f"{element}.collection", "must be true or false")
    return Column(element, name, _path(obj["path"], f"{element}.path"), col_type, collection)


def _select(raw: object, element: str) -> Select:
    obj = _require_object(raw, element)
    _known_elements(obj, _SELECT_ELEMENTS, element)
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
    _known_elements(obj, _CONSTANT_ELEMENTS, element)
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
    _check_constant_value(key, value, f"{element}.{key}")
    if kind == "decimal":
        value = repr(value) if isinstance(value, float) else str(value)
    return name, Literal(value, kind)


# JSON shape of each constant value[x] (FHIR R4 §2.6.2) plus the lexical rule of the type
# (http://hl7.org/fhir/R4/datatypes.html). Numbers and booleans are inlined into SQL, so a
# value of the wrong JSON type must never reach the compiler.
_DATE = r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?"
_FULL_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME = r"([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?"
_ZONE = r"(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))"
_CONSTANT_PATTERNS: dict[str, re.Pattern[str]] = {
    "valueDate": re.compile(f"^{_DATE}$"),
    "valueDateTime": re.compile(f"^({_DATE}|{_FULL_DATE}T{_TIME}{_ZONE})$"),
    "valueInstant": re.compile(f"^{_FULL_DATE}T{_TIME}{_ZONE}$"),
    "valueTime": re.compile(f"^{_TIME}$"),
    "valueId": re.compile(r"^[A-Za-z0-9\-.]{1,64}$"),
    "valueCode": re.compile(r"^\S+( \S+)*$"),
    "valueOid": re.compile(r"^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$"),
    "valueUuid": re.compile(r"^urn:uuid:[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$"),
}
_INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "valueInteger": (-(2**31), 2**31 - 1),
    "valueUnsignedInt": (0, 2**31 - 1),
    "valuePositiveInt": (1, 2**31 - 1),
    "valueInteger64": (-(2**63), 2**63 - 1),
}


def _check_constant_value(key: str, value: object, element: str) -> None:
    if key == "valueBoolean":
        if not isinstance(value, bool):
            raise ViewDefinitionError(element, f"must be true or false, got {value!r}")
        return
    if key in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[key]
        # integer64 is a JSON string in R5; accept both spellings.
        if key == "valueInteger64" and isinstance(value, str) and re.match(r"^-?\d+$", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ViewDefinitionError(
                element, f"must be a JSON integer in [{low}, {high}], got {value!r}"
            )
        return
    if key == "valueDecimal":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ViewDefinitionError(element, f"must be a JSON number, got {value!r}")
        if isinstance(value, str) and not re.match(
            r"^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$", value
        ):
            raise ViewDefinitionError(element, f"must be a decimal number, got {value!r}")
        return
    if not isinstance(value, str):
        raise ViewDefinitionError(element, f"must be a JSON string, got {value!r}")
    pattern = _CONSTANT_PATTERNS.get(key)
    if pattern is not None and not pattern.match(value):
        raise ViewDefinitionError(
            element, f"{value!r} is not a valid {key[5:]} (FHIR R4 datatype, {pattern.pattern})"
        )


def validate_view(raw: object) -> ViewDefinition:
    """Check ``raw`` against the ViewDefinition rules and return the typed view.

    Raises ``ViewDefinitionError`` naming the first offending element and the rule.
    """
    view = _require_object(raw, "ViewDefinition")
    _known_elements(view, _TOP_ELEMENTS, "ViewDefinition")
    if view.get("resourceType", "ViewDefinition") != "ViewDefinition":
        raise ViewDefinitionError("ViewDefinition.resourceType", "must be 'ViewDefinition'")
    resource = view.get("resource")
    if not isinstance(resource, str) or not _RESOURCE.match(resource):
        raise ViewDefinitionError(
            "ViewDefinition.resource", "is required and must be a FHIR resource type name"
        )
    if resource not in resource_types():
        raise ViewDefinitionError(
            "ViewDefinition.resource", f"{resource!r} is not a FHIR R4 resource type"
        )
    if "status" in view and view["status"] not in _STATUS:
        raise ViewDefinitionError(
            "ViewDefinition.status", f"must be one of {sorted(_STATUS)}, got {view['status']!r}"
        )
    if "name" in view and (not isinstance(view["name"], str) or not _NAME.match(view["name"])):
        raise ViewDefinitionError(
            "ViewDefinition.name", "must match ^[A-Za-z][A-Za-z0-9_]*$ (usable as a table name)"
        )
    for key in ("url", "title", "description", "publisher", "copyright", "version"):
        _optional_string(view, key, "ViewDefinition")
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
        _known_elements(obj, _WHERE_ELEMENTS, f"where[{i}]")
        _optional_string(obj, "description", f"where[{i}]")
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
