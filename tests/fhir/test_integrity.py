"""``yilian store check``: orphan and stale search-index rows, found and repaired (both DBs)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from yilian.fhir.integrity import app, index_defects
from yilian.fhir.runtime import RequestContext, Runtime


@pytest.fixture
def cli(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("YILIAN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return CliRunner()


def _defects(runtime: Runtime) -> dict[str, tuple[int, int]]:
    with runtime.sessions() as session:
        return {
            d.table: (d.orphans, d.stale) for d in index_defects(session) if d.orphans or d.stale
        }


def test_writes_and_deletes_leave_no_orphan_or_stale_rows(engine: Engine, cli: CliRunner) -> None:
    runtime = Runtime(engine, "http://testserver/fhir")
    with runtime.transaction(RequestContext.system()) as service:
        service.store.update(
            "Patient", "a", {"resourceType": "Patient", "id": "a", "gender": "male"}
        )
        service.store.update("Patient", "b", {"resourceType": "Patient", "id": "b"})
    with runtime.transaction(RequestContext.system()) as service:
        service.store.update("Patient", "a", {"resourceType": "Patient", "id": "a"})
        service.store.delete("Patient", "b")
    assert _defects(runtime) == {}
    result = cli.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "no orphan or stale rows" in result.output


def test_orphans_and_stale_rows_are_reported_then_repaired(engine: Engine, cli: CliRunner) -> None:
    runtime = Runtime(engine, "http://testserver/fhir")
    with runtime.transaction(RequestContext.system()) as service:
        service.store.update(
            "Patient", "a", {"resourceType": "Patient", "id": "a", "gender": "male"}
        )
    with engine.begin() as conn:
        tokens_of_a = conn.execute(
            text(
                "SELECT count(*) FROM idx_token WHERE resource_pk = "
                "(SELECT pk FROM fhir_resource WHERE res_id = 'a')"
            )
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO idx_token (resource_pk, res_type, param, code) "
                "VALUES (987654, 'Patient', 'gender', 'male')"
            )
        )
        # A deletion that forgot the index rows (the store deletes them in the same transaction).
        conn.execute(text("UPDATE fhir_resource SET deleted = true WHERE res_id = 'a'"))
    assert tokens_of_a >= 1
    assert _defects(runtime) == {"idx_token": (1, tokens_of_a)}
    result = cli.invoke(app, ["check"])
    assert result.exit_code == 1
    assert f"idx_token: 1 orphan, {tokens_of_a} stale" in result.output
    repaired = cli.invoke(app, ["check", "--repair"])
    assert repaired.exit_code == 0
    assert f"deleted {1 + tokens_of_a} rows" in repaired.output
    assert _defects(runtime) == {}
