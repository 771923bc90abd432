"""Search-index rows for a resource: every R4 search parameter of its type, by index kind.

``extract_index_rows(resource)`` returns ``{kind: [row, …]}`` for every kind in
``yilian.fhir.models.INDEX_TABLES``; a row holds ``res_type``, ``param`` and the value columns of
that table. Rows are fresh dicts (the store adds ``resource_pk``) and duplicates within one
parameter are dropped.

Not indexed here: ``_id`` and ``_lastUpdated`` (answered from ``fhir_resource`` columns),
``composite`` parameters (matched by the search side from their component tokens/quantities),
``special`` ones (``near``, ``_text``, ``_content``, …), resources inside ``contained``, and what
``INDEXED_PART`` leaves out (the results named by a search's AuditEvent, ADR 0011).

Expressions are compiled once per resource type by ``paths`` (a fast evaluator for the FHIRPath
subset R4 search uses); any expression it cannot compile is evaluated with fhirpathpy instead —
``fallback_expressions()`` lists them (none for the R4 definitions today).

Value semantics, per kind (what the search side can rely on):

string
    HumanName: ``family``, each ``given``, ``prefix``, ``suffix``, and ``text``, one row each;
    Address: each ``line``, ``city``, ``district``, ``state``, ``postalCode``, ``country``,
    ``text``; string/markdown primitives as they are. ``value_exact`` is the original text,
    ``value_norm`` is ``normalise.normalise_string`` of it (NFKD, combining marks dropped,
    casefolded, whitespace collapsed; CJK unchanged, so ``王小明`` prefix/contains match works).
token
    Coding → (system, code, text_norm = normalised display); CodeableConcept → one row per coding
    plus a row with only ``text_norm`` = normalised ``.text``; Identifier → (system, value as
    code, text_norm = normalised ``type.text``); ContactPoint → (system = ``phone``/``email``/…,
    code = value); code/string/id/uri primitives → code only; boolean → code ``true``/``false``.
    ``Patient.deceased`` (``deceased.exists() and deceased != false``) is always indexed:
    ``false`` when absent or ``deceasedBoolean: false``, ``true`` otherwise.
date
    ``[low, high)`` as naive UTC datetimes. date/dateTime/instant: the whole period the given
    precision covers (``2024`` → [2024-01-01, 2025-01-01)); offsets converted to UTC; a time
    without offset, and a date without time, taken as UTC. Period: start's low to end's high; no
    start → ``normalise.OPEN_LOW`` (``datetime.min``), no end → ``normalise.OPEN_HIGH``
    (``datetime.max``). Timing: one row per ``event`` plus one for ``repeat.boundsPeriod``.
    Strings of choice elements (``performedString``) are indexed only if they read as a date;
    Age and Range choices are not dates and are skipped.
number
    decimal/integer → float ``value``; a Range (RiskAssessment.probability) → its low and high.
quantity
    Quantity/SimpleQuantity/Age/Duration/Distance/Count → (value, system, code, unit); Money →
    (value, system ``urn:iso:std:iso:4217``, code = currency); Range → one row for ``low`` and one
    for ``high`` (the table holds points, so a value strictly inside a range does not match);
    SampledData and quantities without a value are skipped.
reference
    ``Type/id`` and ``Type/id/_history/n`` → target_type, target_id; absolute ``http…/Type/id`` →
    the same plus target_url; other non-contained references (``urn:uuid:…``) → target_url only;
    ``#contained`` → not indexed; ``Reference.identifier`` → identifier_system/identifier_value
    (on the same row as the literal reference if both are present). canonical/uri values →
    target_url, verbatim (``|version`` kept). ``.where(resolve() is T)`` keeps references whose
    literal reference names type T. Bundle.composition/message (a whole resource) and
    Consent.sourceAttachment are not indexed.
uri
    the string value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

from yilian.audit.fhir import indexed_part
from yilian.fhir.searchparams import registry
from yilian.fhir.searchparams.paths import (
    Branch,
    Compiled,
    Nodes,
    Step,
    Unsupported,
    compile_expression,
    evaluate,
)
from yilian.fhir.searchparams.values import COLUMNS, CONVERTERS, Converter, Row, infer_type

log = logging.getLogger(__name__)

SKIPPED_PARAMETERS = frozenset({"_id", "_lastUpdated"})
SKIPPED_TYPES = frozenset({"composite", "special"})

FhirPathFn = Callable[[dict[str, Any]], list[Any]]


@dataclass
class _Group:
    """Branches with the same plain key path and type, shared by every parameter that uses it.

    ``Observation.code`` feeds both ``code`` and ``combo-code``: walk it once, convert once per
    index kind, and file the rows under each parameter.
    """

    rest: tuple[str, ...]  # keys after the first (the first is the resource walk's key)
    steps: tuple[Step, ...]
    fhir_type: str
    uses: list[tuple[str, Converter, list[str]]] = field(default_factory=list)

    def use(self, kind: str, code: str) -> None:
        for used_kind, _, codes in self.uses:
            if used_kind == kind:
                codes.append(code)
                return
        self.uses.append((kind, CONVERTERS[kind], [code]))


@dataclass
class _Plan:
    """Everything needed to index one resource type, grouped for a fast walk over its keys."""

    by_first_key: dict[str, list[_Group]] = field(default_factory=dict)
    whole: list[tuple[str, str, Compiled]] = field(default_factory=list)
    fallback: list[tuple[str, str, FhirPathFn]] = field(default_factory=list)

    def add(self, kind: str, code: str, branch: Branch) -> None:
        groups = self.by_first_key.setdefault(branch.keys[0], [])
        rest = branch.keys[1:]
        if not branch.steps:  # closures cannot be compared: only plain paths are shared
            for group in groups:
                if not group.steps and group.rest == rest and group.fhir_type == branch.fhir_type:
                    group.use(kind, code)
                    return
        group = _Group(rest, branch.steps, branch.fhir_type)
        group.use(kind, code)
        groups.append(group)


def _fhirpath(expression: str) -> FhirPathFn:
    compiled = fhirpathpy.compile(expression, model=models["r4"])

    def run(resource: dict[str, Any]) -> list[Any]:
        result: list[Any] = compiled(resource, None)
        return result

    return run


@cache
def _plan(resource_type: str) -> _Plan:
    plan = _Plan()
    for code, definition in registry.params_for(resource_type).items():
        if code in SKIPPED_PARAMETERS or definition.type in SKIPPED_TYPES:
            continue
        if not definition.expression:
            continue
        try:
            compiled = compile_expression(definition.expression, resource_type)
        except Unsupported as reason:
            log.info("%s.%s via fhirpathpy (%s)", resource_type, code, reason)
            plan.fallback.append((definition.type, code, _fhirpath(definition.expression)))
            continue
        if compiled.exists_not_false or any(not b.keys for b in compiled.branches):
            plan.whole.append((definition.type, code, compiled))
            continue
        for branch in compiled.branches:
            plan.add(definition.type, code, branch)
    return plan


def _walk(group: _Group, first: Any) -> Nodes:
    """Values of a group's path given the value at its first key (the resource walk's)."""
    if type(first) is list:
        nodes: Nodes = first if None not in first else [i for i in first if i is not None]
    else:
        nodes = [first]
    if not group.rest and not group.steps:
        return nodes  # read-only from here on: the caller never mutates it
    for key in group.rest:
        out: Nodes = []
        for node in nodes:
            if type(node) is dict:
                value = node.get(key)
                if value is None:
                    continue
                if type(value) is list:
                    out.extend(item for item in value if item is not None)
                else:
                    out.append(value)
        if not out:
            return out
        nodes = out
    for step in group.steps:
        nodes = step(nodes)
        if not nodes:
            break
    return nodes


Found = dict[str, dict[tuple[str, Row], None]]


def _collect(resource: dict[str, Any], plan: _Plan) -> Found:
    found: Found = {kind: {} for kind in COLUMNS}
    by_first_key = plan.by_first_key
    for key, value in resource.items():
        groups = by_first_key.get(key)
        if groups is None:
            continue
        for group in groups:
            nodes = _walk(group, value)
            if not nodes:
                continue
            fhir_type = group.fhir_type
            for kind, convert, codes in group.uses:
                rows = found[kind]
                for node in nodes:
                    for row in convert(node, fhir_type):
                        for code in codes:
                            rows[(code, row)] = None
    for kind, code, compiled in plan.whole:
        convert = CONVERTERS[kind]
        for node, node_type in evaluate(compiled, resource):
            for row in convert(node, node_type):
                found[kind][(code, row)] = None
    for kind, code, run in plan.fallback:
        _collect_fallback(resource, kind, code, run, found[kind])
    return found


def _collect_fallback(
    resource: dict[str, Any],
    kind: str,
    code: str,
    run: FhirPathFn,
    rows: dict[tuple[str, Row], None],
) -> None:
    try:
        values = run(resource)
    except Exception as error:  # fhirpathpy raises bare Exception for unsupported functions
        log.warning("%s.%s not indexed: %s", resource.get("resourceType"), code, error)
        return
    convert = CONVERTERS[kind]
    for value in values:
        for row in convert(value, infer_type(value, kind)):
            rows[(code, row)] = None


# One dict literal per kind: several times faster than dict(zip(...)) on the hot path.
Rows = dict[tuple[str, Row], None]
_BUILDERS: dict[str, Callable[[str, Rows], list[dict[str, Any]]]] = {
    "string": lambda t, rows: [
        {"res_type": t, "param": c, "value_norm": r[0], "value_exact": r[1]} for c, r in rows
    ],
    "token": lambda t, rows: [
        {"res_type": t, "param": c, "system": r[0], "code": r[1], "text_norm": r[2]}
        for c, r in rows
    ],
    "date": lambda t, rows: [
        {"res_type": t, "param": c, "low": r[0], "high": r[1]} for c, r in rows
    ],
    "number": lambda t, rows: [{"res_type": t, "param": c, "value": r[0]} for c, r in rows],
    "quantity": lambda t, rows: [
        {"res_type": t, "param": c, "value": r[0], "system": r[1], "code": r[2], "unit": r[3]}
        for c, r in rows
    ],
    "reference": lambda t, rows: [
        {
            "res_type": t,
            "param": c,
            "target_type": r[0],
            "target_id": r[1],
            "target_url": r[2],
            "identifier_system": r[3],
            "identifier_value": r[4],
        }
        for c, r in rows
    ],
    "uri": lambda t, rows: [{"res_type": t, "param": c, "value": r[0]} for c, r in rows],
}


# Types whose index deliberately holds less than the resource says: the part that is indexed.
INDEXED_PART: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "AuditEvent": indexed_part,  # a search's AuditEvent: its patients, not every result
}


def _indexed(resource: dict[str, Any], res_type: str) -> dict[str, Any]:
    part = INDEXED_PART.get(res_type)
    return part(resource) if part is not None else resource


def extract_index_rows(resource: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Index rows for every search parameter of the resource's type, keyed by index kind."""
    res_type: str = resource["resourceType"]
    found = _collect(_indexed(resource, res_type), _plan(res_type))
    return {kind: _BUILDERS[kind](res_type, rows) for kind, rows in found.items()}


def extract_index_tuples(resource: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of ``extract_index_rows`` as tuples ``(res_type, param, *values)``, values in
    ``values.COLUMNS`` order; kinds without rows are left out. The bulk loader's form: it writes
    whole tuples, and building a dict per row costs more than the rest of its bookkeeping."""
    res_type: str = resource["resourceType"]
    found = _collect(_indexed(resource, res_type), _plan(res_type))
    return {kind: [(res_type, c, *r) for c, r in rows] for kind, rows in found.items() if rows}


def fallback_expressions(resource_type: str) -> list[tuple[str, str]]:
    """(code, expression) of the parameters of a type that are evaluated by fhirpathpy."""
    plan = _plan(resource_type)
    params = registry.params_for(resource_type)
    return [(code, params[code].expression) for _, code, _ in plan.fallback]
