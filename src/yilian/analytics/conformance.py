"""Run SQL-on-FHIR v2 test files (the official suite's JSON format) on an engine.

Test file format and report format: https://github.com/FHIR/sql-on-fhir-v2 (tests/*.json and
the implementations page's ``test_report``: ``{"<file>.json": {"tests": [{"name": ...,
"result": {"passed": bool}}]}}``). Rows are compared as multisets (the spec does not fix row
order); numbers are compared after rounding to 9 significant digits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yilian.analytics.engines import Engine
from yilian.analytics.errors import AnalyticsError


@dataclass(frozen=True)
class CaseResult:
    file: str
    name: str
    passed: bool
    reason: str = ""


def _normal(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        f = float(value)
        return float(f"{f:.9g}") if math.isfinite(f) else f
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return str(value)


def _canonical(rows: Iterable[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(_normal(r), sort_keys=True) for r in rows)


def check_case(engine: Engine, test: dict[str, Any]) -> tuple[bool, str]:
    """Run one test of a suite file against the resources already loaded in ``engine``."""
    try:
        table = engine.run_view(test["view"])
    except AnalyticsError as exc:
        if test.get("expectError"):
            return True, ""
        return False, str(exc)[:500]
    if test.get("expectError"):
        return False, "expected an error, the view ran"
    if "expectColumns" in test and table.column_names != test["expectColumns"]:
        return False, f"columns {table.column_names} != {test['expectColumns']}"
    if "expect" in test:
        got, want = _canonical(table.to_pylist()), _canonical(test["expect"])
        if got != want:
            return False, f"rows differ: got {got[:5]}, want {want[:5]}"
    return True, ""


def run_file(engine: Engine, path: Path) -> list[CaseResult]:
    suite = json.loads(path.read_text(encoding="utf-8"))
    engine.load_resources(suite.get("resources", []))
    results = []
    for test in suite.get("tests", []):
        passed, reason = check_case(engine, test)
        results.append(CaseResult(path.name, test.get("title", "?"), passed, reason))
    return results


def run_directory(
    engine: Engine, directory: Path, on_file: Callable[[Path], None] | None = None
) -> list[CaseResult]:
    results: list[CaseResult] = []
    for path in sorted(directory.glob("*.json")):
        if on_file is not None:
            on_file(path)
        results.extend(run_file(engine, path))
    return results


def report(results: Iterable[CaseResult]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in results:
        out.setdefault(r.file, {"tests": []})["tests"].append(
            {"name": r.name, "result": {"passed": r.passed}}
        )
    return out
