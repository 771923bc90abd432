"""CLI contract: `views conformance` on any directory of suite-format files; refresh; sql."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yilian.analytics import viewstore
from yilian.analytics.cli import app

runner = CliRunner()

SUITE_FILE = {
    "title": "tiny",
    "resources": [{"resourceType": "Patient", "id": "p1"}, {"resourceType": "Patient", "id": "p2"}],
    "tests": [
        {
            "title": "ids",
            "view": {"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]},
            "expect": [{"id": "p1"}, {"id": "p2"}],
        },
        {"title": "wrong on purpose", "view": {"resource": "Patient", "select": [{"column": [
            {"name": "id", "path": "id"}]}]}, "expect": [{"id": "p9"}]},
        {"title": "error", "view": {"select": []}, "expectError": True},
    ],
}  # fmt: skip


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_conformance_reports_counts_last_and_writes_report(tmp_path: Path, engine: str) -> None:
    (tmp_path / "tiny.json").write_text(json.dumps(SUITE_FILE), encoding="utf-8")
    report = tmp_path / "report.json"
    result = runner.invoke(
        app, ["conformance", str(tmp_path), "--engine", engine, "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "2 passed, 1 failed"
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data == {
        "tiny.json": {
            "tests": [
                {"name": "ids", "result": {"passed": True}},
                {"name": "wrong on purpose", "result": {"passed": False}},
                {"name": "error", "result": {"passed": True}},
            ]
        }
    }


def test_refresh_full_then_incremental_then_sql(tmp_path: Path) -> None:
    src, out = tmp_path / "export", tmp_path / "views"
    src.mkdir()
    old = {"lastUpdated": "2024-01-01T00:00:00Z"}
    patients = [
        {"resourceType": "Patient", "id": "a", "meta": old, "gender": "female"},
        {"resourceType": "Patient", "id": "b", "meta": old, "gender": "male"},
    ]
    (src / "Patient.ndjson").write_text("\n".join(map(json.dumps, patients)), encoding="utf-8")
    result = runner.invoke(app, ["refresh", "--source", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "patients.parquet").exists()

    patients[1] = {
        **patients[1],
        "gender": "other",
        "meta": {"lastUpdated": "2024-02-01T00:00:00Z"},
    }
    (src / "Patient.ndjson").write_text("\n".join(map(json.dumps, patients)), encoding="utf-8")
    result = runner.invoke(
        app, ["refresh", "--source", str(src), "--out", str(out), "--incremental"]
    )
    assert result.exit_code == 0, result.output
    assert "incremental" in result.output

    result = runner.invoke(
        app, ["sql", "SELECT id, gender FROM patients ORDER BY id", "--views", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "other" in result.output and "female" in result.output
    assert "2 rows" in result.output


def test_refresh_refuses_a_corrupt_state_file(tmp_path: Path) -> None:
    src, out = tmp_path / "export", tmp_path / "views"
    src.mkdir()
    out.mkdir()
    (src / "Patient.ndjson").write_text('{"resourceType": "Patient", "id": "a"}\n')
    (out / "_refresh_state.json").write_text('{"watermark": "x\' OR 1=1 --"}')
    result = runner.invoke(
        app, ["refresh", "--source", str(src), "--out", str(out), "--incremental"]
    )
    assert result.exit_code == 1
    assert "watermark must be a FHIR instant" in result.output


def test_incremental_without_last_updated_merges_and_drops_deleted(tmp_path: Path) -> None:
    # The synthetic district writes no meta.lastUpdated: incremental must still merge.
    src, since, out = tmp_path / "export", tmp_path / "since", tmp_path / "views"
    src.mkdir()
    since.mkdir()
    patients = [{"resourceType": "Patient", "id": i, "gender": "female"} for i in "abc"]
    (src / "Patient.ndjson").write_text("\n".join(map(json.dumps, patients)), encoding="utf-8")
    assert runner.invoke(app, ["refresh", "--source", str(src), "--out", str(out)]).exit_code == 0
    changed = {"resourceType": "Patient", "id": "b", "gender": "male"}
    (since / "Patient.ndjson").write_text(json.dumps(changed) + "\n", encoding="utf-8")
    gone = {
        "resourceType": "Bundle",
        "entry": [{"request": {"method": "DELETE", "url": "Patient/c"}}],
    }
    (since / "deleted.json").write_text(json.dumps(gone) + "\n", encoding="utf-8")
    result = runner.invoke(
        app,
        ["refresh", "--source", str(since), "--out", str(out), "--incremental",
         "--deleted", str(since / "deleted.json")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = viewstore.read_view(out, "patients").to_pylist()
    assert sorted((r["id"], r["gender"]) for r in rows) == [("a", "female"), ("b", "male")]
