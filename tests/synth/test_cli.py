"""``yilian synth`` writes one NDJSON file per type and reports what it wrote."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from yilian.synth.cli import synth

app = typer.Typer()
app.command()(synth)


def test_synth_command_writes_the_district(tmp_path: Path) -> None:
    out = tmp_path / "district"
    result = CliRunner().invoke(
        app, ["--out", str(out), "--scale", "0.0003", "--seed", "3", "--years", "1"]
    )
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"Patient.ndjson", "Organization.ndjson", "Encounter.ndjson"} <= names
    assert len((out / "Patient.ndjson").read_text().splitlines()) == 208
    text = " ".join(result.output.split())
    assert "208 residents" in text and f"yilian load {out}" in text


def test_bad_end_date_is_a_clear_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--out", str(tmp_path), "--end-date", "31/10/2026"])
    assert result.exit_code != 0
    assert "--end-date must be YYYY-MM-DD" in result.output
