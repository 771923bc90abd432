"""``yilian audit verify|head|tail`` against a real database of either backend."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from yilian.audit.cli import app

from .helpers import fill, sql


@pytest.fixture
def cli(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("YILIAN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_verify_ok_reports_entries_checked(engine: Engine, cli: CliRunner) -> None:
    fill(engine, 7)
    result = cli.invoke(app, ["verify"])
    assert result.exit_code == 0, result.output
    assert "OK 7 entries checked, chain head 7" in result.output


def test_verify_names_the_first_bad_entry_and_fails(engine: Engine, cli: CliRunner) -> None:
    fill(engine, 7)
    sql(engine, "UPDATE audit_entry SET actor = 'nobody' WHERE seq = 3")
    result = cli.invoke(app, ["verify"])
    assert result.exit_code == 1
    assert "BROKEN at entry 3: MODIFIED" in result.output
    assert "2 entries before it verified" in result.output


def test_head_output_works_as_an_anchor(engine: Engine, cli: CliRunner) -> None:
    records = fill(engine, 5)
    head = cli.invoke(app, ["head"]).output.strip()
    assert head == f"5:{records[-1].hash}"
    sql(engine, "DELETE FROM audit_patient WHERE seq = 5")
    sql(engine, "DELETE FROM audit_entry WHERE seq = 5")
    assert cli.invoke(app, ["verify"]).exit_code == 0
    result = cli.invoke(app, ["verify", "--anchor", head])
    assert result.exit_code == 1
    assert "BROKEN at entry 5: DELETED" in result.output


def test_bad_anchor_is_a_usage_error(engine: Engine, cli: CliRunner) -> None:
    result = cli.invoke(app, ["verify", "--anchor", "12:nothex"])
    assert result.exit_code == 2
    assert "SEQ:HASH" in result.output


def test_tail_lists_the_newest_entries(engine: Engine, cli: CliRunner) -> None:
    fill(engine, 5)
    table = cli.invoke(app, ["tail", "-n", "2"])
    assert table.exit_code == 0
    assert "obs-3" in table.output and "obs-4" in table.output and "obs-2" not in table.output
    fhir = cli.invoke(app, ["tail", "-n", "1", "--fhir"])
    assert '"id": "audit-5"' in fhir.output
