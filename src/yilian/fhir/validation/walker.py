"""One pass over a resource's JSON: structure (R4 models), resource ids and required bindings.

Every problem becomes an Issue whose ``expression`` is the element path in FHIRPath style
(``Patient.contact[0].gender``) and whose ``rule`` names what failed, so a client developer can fix
the payload without reading our code. The checks follow the JSON representation of R4:
https://hl7.org/fhir/R4/json.html (arrays for repeating elements, ``_name`` for a primitive's id
and extensions, one type per choice element, no nulls).
"""

from __future__ import annotations

import re
from typing import Any

from yilian.fhir.errors import Issue
from yilian.fhir.validation.schema import Binding, Field, Kind, Node, resource_node

STRUCTURE = "fhir-r4-structure"
UNKNOWN_ELEMENT = "unknown-element"
REQUIRED_ELEMENT = "required-element"
CHOICE_TYPE = "choice-type"
REQUIRED_BINDING = "required-binding"
ID_FORMAT = "id-format"
UNKNOWN_RESOURCE_TYPE = "unknown-resource-type"

# https://hl7.org/fhir/R4/datatypes.html#id
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_SHOWN_CODES = 12

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a decimal number",
    type(None): "null",
}
_EXPECTED = {
    Kind.STRING: "a string",
    Kind.BOOLEAN: "true or false",
    Kind.INTEGER: "an integer",
    Kind.DECIMAL: "a number",
    Kind.DATE: "a string",
    Kind.ELEMENT: "an object",
    Kind.RESOURCE: "a resource (an object with resourceType)",
}
_PRIMITIVE_TYPES: dict[Kind, tuple[type, ...]] = {
    Kind.STRING: (str,),
    Kind.BOOLEAN: (bool,),
    Kind.INTEGER: (int,),
    Kind.DECIMAL: (int, float),
}


# http://hl7.org/fhir/issue-type codes for OperationOutcome.issue.code, by rule.
ISSUE_TYPES = {
    STRUCTURE: "structure",
    UNKNOWN_ELEMENT: "structure",
    CHOICE_TYPE: "structure",
    REQUIRED_ELEMENT: "required",
    REQUIRED_BINDING: "code-invalid",
    ID_FORMAT: "value",
    UNKNOWN_RESOURCE_TYPE: "not-supported",
}


def _issue(message: str, *, expression: str, rule: str) -> Issue:
    return Issue(message, code=ISSUE_TYPES[rule], expression=expression, rule=rule)


def json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def check_resource(resource: dict[str, Any], path: str, issues: list[Issue]) -> None:
    """Check a resource (the root, a contained one or a Bundle entry) found at ``path``."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        issues.append(
            _issue(
                "A resource must have a resourceType naming an R4 resource type",
                expression=f"{path}.resourceType" if path else "resourceType",
                rule=REQUIRED_ELEMENT,
            )
        )
        return
    node = resource_node(resource_type)
    if node is None:
        issues.append(
            _issue(
                f"Unknown resourceType {resource_type!r}: not a FHIR R4 resource type",
                expression=f"{path}.resourceType" if path else "resourceType",
                rule=UNKNOWN_RESOURCE_TYPE,
            )
        )
        return
    _check_object(resource, node, path or resource_type, issues)
    rid = resource.get("id")
    if isinstance(rid, str) and not ID_PATTERN.fullmatch(rid):
        issues.append(
            _issue(
                f"Resource id {rid!r} is not a FHIR id: 1-64 characters from A-Z a-z 0-9 - .",
                expression=f"{path or resource_type}.id",
                rule=ID_FORMAT,
            )
        )


def _check_object(obj: dict[str, Any], node: Node, path: str, issues: list[Issue]) -> None:
    fields = node.fields
    seen_choices: dict[str, str] | None = None
    for key, value in obj.items():
        spec = fields.get(key)
        if spec is None:
            if (key == "resourceType" and node.is_resource) or (
                key[:1] == "_" and key[1:] in fields
            ):
                continue
            issues.append(
                _issue(
                    f"Unknown element {key!r}: FHIR R4 {node.path} has no such element",
                    expression=f"{path}.{key}",
                    rule=UNKNOWN_ELEMENT,
                )
            )
            continue
        if spec.choice is not None:
            seen_choices = seen_choices or {}
            other = seen_choices.setdefault(spec.choice, key)
            if other != key:
                issues.append(
                    _issue(
                        f"{node.path}.{spec.choice} has one type only, but both {other!r} and "
                        f"{key!r} are given",
                        expression=f"{path}.{key}",
                        rule=CHOICE_TYPE,
                    )
                )
        if spec.is_list:
            if type(value) is not list:
                issues.append(_shape_issue(value, f"{path}.{key}", "an array"))
                continue
            for index, item in enumerate(value):
                _check_value(item, spec, f"{path}.{key}[{index}]", issues)
        elif type(value) is list:
            issues.append(_shape_issue(value, f"{path}.{key}", "a single value, not an array"))
        elif spec.kind is Kind.STRING and type(value) is str:
            # The most common case, inlined: no path string is built for a valid value.
            if spec.binding is not None and value not in spec.binding.codes:
                issues.append(_binding_issue(value, spec.binding, f"{path}.{key}"))
        else:
            _check_value(value, spec, f"{path}.{key}", issues)
    for element, keys in node.required.items():
        for key in keys:
            if key in obj:
                break
        else:
            issues.append(
                _issue(
                    f"Missing required element {node.path}.{element} (cardinality 1..)",
                    expression=f"{path}.{element.removesuffix('[x]')}",
                    rule=REQUIRED_ELEMENT,
                )
            )


def _shape_issue(value: Any, path: str, expected: str) -> Issue:
    return _issue(f"Expected {expected}, got {json_type(value)}", expression=path, rule=STRUCTURE)


def _check_value(value: Any, spec: Field, path: str, issues: list[Issue]) -> None:
    kind = spec.kind
    if kind is Kind.ELEMENT:
        if type(value) is not dict:
            issues.append(_type_issue(value, spec, path))
            return
        assert spec.node is not None
        _check_object(value, spec.node, path, issues)
        if spec.binding is not None:
            _check_codings(value, spec, path, issues)
    elif kind is Kind.RESOURCE:
        if type(value) is not dict:
            issues.append(_type_issue(value, spec, path))
            return
        check_resource(value, path, issues)
    elif kind is Kind.DATE:
        if type(value) is not str:
            issues.append(_type_issue(value, spec, path))
            return
        if not _is_date(value, spec):
            issues.append(
                _issue(
                    f"{value!r} is not a valid FHIR {spec.type_name} "
                    "(https://hl7.org/fhir/R4/datatypes.html)",
                    expression=path,
                    rule=STRUCTURE,
                )
            )
    elif type(value) not in _PRIMITIVE_TYPES[kind]:
        issues.append(_type_issue(value, spec, path))
    elif spec.binding is not None and value not in spec.binding.codes:
        issues.append(_binding_issue(value, spec.binding, path))


def _is_date(value: str, spec: Field) -> bool:
    """fhirclient's own check (pinned 4.4.0): the R4 regex, then a real calendar date/time."""
    date_type = spec.date_type
    assert date_type is not None
    if not date_type._REGEX.fullmatch(value):
        return False
    try:
        date_type._from_string(value)
    except ValueError:
        return False
    return True


def _type_issue(value: Any, spec: Field, path: str) -> Issue:
    expected = _EXPECTED[spec.kind]
    if spec.kind is Kind.ELEMENT:
        expected = f"a {spec.type_name} object"
    return _issue(f"Expected {expected}, got {json_type(value)}", expression=path, rule=STRUCTURE)


def _check_codings(value: dict[str, Any], spec: Field, path: str, issues: list[Issue]) -> None:
    """Check a CodeableConcept's codings from the value set's own systems.

    Codings from other systems are translations (a local code beside the FHIR one) and pass. R4
    binds no Coding-typed base element with strength required, so CodeableConcept is the only case.
    """
    binding = spec.binding
    assert binding is not None
    codings = value.get("coding")
    if type(codings) is not list:
        return
    for index, coding in enumerate(codings):
        if type(coding) is not dict:
            continue
        system, code = coding.get("system"), coding.get("code")
        if type(system) is not str or type(code) is not str:
            continue  # a wrong type was already reported by the structure check
        allowed = binding.by_system.get(system)
        if allowed is not None and code not in allowed:
            issues.append(_binding_issue(code, binding, f"{path}.coding[{index}].code"))


def _binding_issue(code: str, binding: Binding, path: str) -> Issue:
    codes = sorted(binding.codes)
    shown = ", ".join(codes[:_SHOWN_CODES]) + (", ..." if len(codes) > _SHOWN_CODES else "")
    return _issue(
        f"Code {code!r} is not in the required value set {binding.value_set} (allowed: {shown})",
        expression=path,
        rule=REQUIRED_BINDING,
    )
