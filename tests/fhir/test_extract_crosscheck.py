"""The compiled search-expression evaluator against fhirpathpy, on every parameter of real content.

For each resource of the official R4 examples (all but the conformance/terminology definitions)
and of the Synthea bundles, and for every indexed search parameter of its type, the values our
compiled paths yield must equal fhirpathpy's for the same expression; and the rows
``extract_index_rows`` writes must be exactly the rows those values convert to (the production
path walks the resource by first key, a different route from the per-expression evaluator).

fhirpathpy runs only where the resource holds an element the expression starts from (read off
the expression's text); elsewhere FHIRPath yields nothing, and ours must yield nothing too.

Two rewrites make fhirpathpy compute what a search index means by the expression:
- ``(X as T)`` and ``X.as(T)`` → ``X.ofType(T)``: FHIRPath's ``as`` demands a single item and
  fhirpathpy raises on ``useContext.value as CodeableConcept`` over several contexts; R5 rewrote
  these search expressions with ``ofType`` for that reason.
- ``where(resolve() is T)`` → a match on the literal reference: fhirpathpy has no ``resolve()``,
  and an index cannot resolve either; it reads the type from ``T/id`` or ``…/T/id``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import fhirpathpy
import pytest
from fhirpathpy.models import models

from yilian.fhir.searchparams import registry
from yilian.fhir.searchparams.extract import SKIPPED_PARAMETERS, SKIPPED_TYPES, extract_index_rows
from yilian.fhir.searchparams.paths import Compiled, compile_expression, evaluate
from yilian.fhir.searchparams.values import COLUMNS, CONVERTERS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / ".cache/hl7-r4-examples/package"
SYNTHEA = Path(os.environ.get("YILIAN_SYNTHEA_DIR", "/work/shared/data/fhir/synthea-r4"))
DEFINITIONS = frozenset(
    {
        "StructureDefinition",
        "ValueSet",
        "CodeSystem",
        "SearchParameter",
        "OperationDefinition",
        "CapabilityStatement",
        "CompartmentDefinition",
        "ConceptMap",
        "NamingSystem",
        "ImplementationGuide",
        "StructureMap",
        "GraphDefinition",
        "MessageDefinition",
        "TerminologyCapabilities",
        "ExampleScenario",
    }
)

_AS = re.compile(r"\((\S+) as (\w+)\)")
_RESOLVE = re.compile(r"\.where\(resolve\(\) is (\w+)\)")


def fhirpathpy_expression(expression: str) -> str:
    expression = _AS.sub(r"\1.ofType(\2)", expression).replace(".as(", ".ofType(")
    return _RESOLVE.sub(
        lambda m: (
            f".where(reference.matches('^([^#:]*/)?{m[1]}/[-A-Za-z0-9.]{{1,64}}(/_history/[^/]+)?$')"
            f" or reference.matches('^https?://.*/{m[1]}/[-A-Za-z0-9.]{{1,64}}(/_history/[^/]+)?$'))"
        ),
        expression,
    )


@cache
def evaluators(res_type: str, code: str) -> tuple[Compiled, Callable[..., list[Any]]]:
    expression = registry.params_for(res_type)[code].expression
    theirs = fhirpathpy.compile(fhirpathpy_expression(expression), model=models["r4"])
    return compile_expression(expression, res_type), theirs


@cache
def first_elements(res_type: str, expression: str) -> tuple[str, ...]:
    """Top-level element names an expression reads, read off its text (not off our compiler)."""
    return tuple(set(re.findall(rf"\b{res_type}\.(\w+)", expression)))


def may_yield(resource: dict[str, Any], res_type: str, expression: str) -> bool:
    """False only when no element the expression starts from is present (choice ``x[x]`` too):
    then FHIRPath yields nothing, unless the expression tests existence."""
    if ".exists()" in expression:
        return True
    names = first_elements(res_type, expression)
    return any(
        key == name or (key.startswith(name) and key[len(name) : len(name) + 1].isupper())
        for key in resource
        for name in names
    )


def canonical(value: Any) -> str:
    def default(item: Any) -> float:
        if isinstance(item, Decimal):
            return float(item)
        raise TypeError(type(item))

    return json.dumps(value, sort_keys=True, default=default)


def indexed_params(res_type: str) -> list[tuple[str, str]]:
    return [
        (code, d.type)
        for code, d in registry.params_for(res_type).items()
        if code not in SKIPPED_PARAMETERS and d.type not in SKIPPED_TYPES
    ]


def disagreements(name: str, resource: dict[str, Any]) -> Iterator[str]:
    res_type = resource["resourceType"]
    expected_rows: set[tuple[str, str, tuple[Any, ...]]] = set()
    copy = json.loads(json.dumps(resource))  # fhirpathpy annotates its input: keep ours pristine
    for code, kind in indexed_params(res_type):
        ours, theirs = evaluators(res_type, code)
        pairs = evaluate(ours, resource)
        mine = {canonical(value) for value, _ in pairs}
        expression = registry.params_for(res_type)[code].expression
        if may_yield(resource, res_type, expression):
            reference = {canonical(v) for v in theirs(copy, None)}
        else:
            reference = set()
        if mine != reference:
            yield f"{name} {res_type}.{code}: ours {sorted(mine)} fhirpathpy {sorted(reference)}"
        for value, fhir_type in pairs:
            expected_rows |= {(kind, code, row) for row in CONVERTERS[kind](value, fhir_type)}
    actual_rows = {
        (kind, row["param"], tuple(row[c] for c in COLUMNS[kind]))
        for kind, rows in extract_index_rows(resource).items()
        for row in rows
    }
    if actual_rows != expected_rows:
        yield f"{name}: extract_index_rows differs by {actual_rows ^ expected_rows}"


def example_resources() -> Iterator[tuple[str, dict[str, Any]]]:
    if not (EXAMPLES / "package.json").exists():
        pytest.fail(f"The R4 examples are missing from {EXAMPLES}: run scripts/setup")
    for path in sorted(EXAMPLES.glob("*.json")):
        if path.name == "package.json":
            continue
        resource = json.loads(path.read_text(encoding="utf-8"))
        if resource.get("resourceType") not in DEFINITIONS:
            yield path.name, resource


def synthea_resources() -> Iterator[tuple[str, dict[str, Any]]]:
    if not SYNTHEA.is_dir():
        pytest.skip(f"Synthea sample not present at {SYNTHEA} (set YILIAN_SYNTHEA_DIR)")
    for path in sorted(SYNTHEA.glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        for i, entry in enumerate(bundle["entry"]):
            yield f"{path.name}#entry[{i}]", entry["resource"]


def test_compiled_paths_agree_with_fhirpathpy_on_r4_examples() -> None:
    checked = 0
    problems: list[str] = []
    for name, resource in example_resources():
        checked += 1
        problems += disagreements(name, resource)
    assert checked == 719
    assert problems == []


def test_compiled_paths_agree_with_fhirpathpy_on_synthea() -> None:
    checked = 0
    problems: list[str] = []
    for name, resource in synthea_resources():
        checked += 1
        problems += disagreements(name, resource)
    assert checked == 5521
    assert problems == []
