"""Engine contract: the same calls give the same Arrow results on DuckDB and Spark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yilian.analytics.engines import Engine
from yilian.analytics.errors import ViewExecutionError

PATIENTS = [
    {"resourceType": "Patient", "id": "a", "gender": "female", "name": [{"given": ["X", "Y"]}]},
    {"resourceType": "Patient", "id": "b", "gender": "male"},
    {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "t"}},
]
VIEW = {
    "resource": "Patient",
    "select": [
        {
            "column": [
                {"name": "id", "path": "id", "type": "id"},
                {"name": "gender", "path": "gender", "type": "code"},
                {"name": "given", "path": "name.given", "type": "string", "collection": True},
            ]
        }
    ],
}


def test_load_resources_counts_and_view_returns_arrow(any_engine: Engine) -> None:
    assert any_engine.load_resources(PATIENTS) == 3
    table = any_engine.run_view(VIEW)
    assert table.column_names == ["id", "gender", "given"]
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert rows == [
        {"id": "a", "gender": "female", "given": ["X", "Y"]},
        {"id": "b", "gender": "male", "given": []},
    ]


def test_load_ndjson(any_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "Patient.ndjson"
    path.write_text("\n".join(json.dumps(p) for p in PATIENTS[:2]) + "\n", encoding="utf-8")
    assert any_engine.load_ndjson([path]) == 2
    assert sorted(any_engine.run_view(VIEW)["id"].to_pylist()) == ["a", "b"]


def test_multiple_values_without_collection_fail_at_run_time(any_engine: Engine) -> None:
    any_engine.load_resources(PATIENTS)
    view = {"resource": "Patient", "select": [{"column": [{"name": "g", "path": "name.given"}]}]}
    with pytest.raises(ViewExecutionError, match=r"select\[0\]\.column\[0\]\.path"):
        any_engine.run_view(view)


def test_decimal_precision_survives_ndjson_load(any_engine: Engine, tmp_path: Path) -> None:
    # Written as text: 1.50 must keep its two decimals (FHIR R4 decimal), 2 stays an integer.
    path = tmp_path / "Observation.ndjson"
    path.write_text(
        '{"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "t"}, '
        '"valueQuantity": {"value": 1.50, "unit": "mg"}, "note": [{"text": "1.0"}]}\n',
        encoding="utf-8",
    )
    any_engine.load_ndjson([path])
    view = {
        "resource": "Observation",
        "select": [
            {
                "column": [
                    {"name": "v", "path": "value.ofType(Quantity).value", "type": "decimal"},
                    {"name": "low", "path": "value.ofType(Quantity).value.lowBoundary()"},
                    {"name": "text", "path": "value.ofType(Quantity).value", "type": "string"},
                    {"name": "note", "path": "note.text", "type": "string"},
                ]
            }
        ],
    }
    row = any_engine.run_view(view).to_pylist()[0]
    assert row["v"] == pytest.approx(1.5)
    assert float(row["low"]) == pytest.approx(1.495)
    assert row["text"] == "1.50"
    assert row["note"] == "1.0"
