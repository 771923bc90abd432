"""Every official SQL-on-FHIR v2 test on DuckDB and on Spark (one pytest test each)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from yilian.analytics.conformance import check_case
from yilian.analytics.engines import Engine

SUITE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "sql-on-fhir-v2"


def _cases() -> list[Any]:
    cases = []
    for path in sorted(SUITE.glob("*.json")):
        suite = json.loads(path.read_text(encoding="utf-8"))
        for i, test in enumerate(suite["tests"]):
            cases.append(pytest.param(path, i, id=f"{path.stem}[{i}] {test['title']}"))
    return cases


CASES = _cases()


def test_suite_is_present() -> None:
    assert len(CASES) == 134


@pytest.mark.parametrize(("path", "index"), CASES)
def test_suite_case(any_engine: Engine, path: Path, index: int) -> None:
    suite = json.loads(path.read_text(encoding="utf-8"))
    any_engine.load_resources(suite["resources"])
    passed, reason = check_case(any_engine, suite["tests"][index])
    assert passed, reason
