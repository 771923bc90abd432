"""``yilian load`` / ``yilian export`` through Typer, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.fhir.bulk.conftest import write_ndjson
from yilian.fhir.bulk.cli import export, load


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("load")(load)
    app.command("export")(export)
    return app


def test_load_reports_and_resumes_then_export(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YILIAN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("YILIAN_DATA_DIR", str(tmp_path))
    path = write_ndjson(
        tmp_path / "in.ndjson",
        [{"resourceType": "Patient", "id": "c1"}, {"resourceType": "Patient", "id": "c2"}],
        ('{"resourceType": "Patient", "birthDate": "soon"}',),
    )
    runner = CliRunner()
    first = runner.invoke(cli(), ["load", str(path), "--workers", "0"])
    assert first.exit_code == 0, first.output
    assert "2 loaded" in first.output and "1 rejected" in first.output
    assert f"{path}:3" in first.output and "birthDate" in first.output
    again = runner.invoke(cli(), ["load", str(path), "--workers", "0"])
    assert "0 loaded" in again.output and "1 already loaded" in again.output
    strict = runner.invoke(cli(), ["load", str(path), "--workers", "0", "--strict", "--restart"])
    assert strict.exit_code == 1 and "stopped" in strict.output
    out = tmp_path / "out"
    exported = runner.invoke(cli(), ["export", str(out), "--type", "Patient"])
    assert exported.exit_code == 0, exported.output
    ids = {json.loads(line)["id"] for line in (out / "Patient.ndjson").read_text().splitlines()}
    assert ids == {"c1", "c2"}
