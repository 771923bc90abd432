"""Invariants of the code base that must not erode (STYLE.md §6).

Only the store layer may touch the resource, history and index tables: that is what keeps every
personal-data access going through the audit choke point. A module outside the layer that really
must import them carries the escape comment ``# arch: store-access`` with a reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "yilian"
STORE_LAYER = (
    "fhir/store.py",
    "fhir/indexdiff.py",  # the store's update path: rewrites only the index rows that changed
    "fhir/service.py",  # compartment queries of $everything
    "fhir/search/",
    "fhir/bulk/",
    "fhir/searchparams/",  # names the index tables' columns, does not query them
    "schema.py",  # registers the tables for Alembic
)
STORE_TABLES = "yilian.fhir.models"
ESCAPE = "# arch: store-access"


def source_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def imported_modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_only_the_store_layer_touches_resource_tables() -> None:
    offenders = []
    for path in source_files():
        relative = path.relative_to(SRC).as_posix()
        if relative == "fhir/models.py" or relative.startswith(STORE_LAYER):
            continue
        text = path.read_text(encoding="utf-8")
        if STORE_TABLES in imported_modules(ast.parse(text)) and ESCAPE not in text:
            offenders.append(relative)
    assert offenders == [], f"modules outside the store layer import {STORE_TABLES}: {offenders}"


def test_no_print_calls_in_src() -> None:
    offenders = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


def test_every_package_has_tests() -> None:
    tests = Path(__file__).resolve().parent
    test_text = "\n".join(p.read_text(encoding="utf-8") for p in tests.rglob("test_*.py"))
    # migrations are exercised by tests/test_schema.py through yilian.schema
    packages = [p.parent.name for p in SRC.glob("*/__init__.py") if p.parent.name != "migrations"]
    untested = [name for name in packages if f"yilian.{name}" not in test_text]
    assert untested == []
