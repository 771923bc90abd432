"""``yilian referral generate-slots`` and the idempotent ``release-slots`` job."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.referral.conftest import make_network
from yilian.cli import app


def test_generate_then_release_twice(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    make_network(engine)
    monkeypatch.setenv("YILIAN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    made = runner.invoke(
        app,
        ["referral", "generate-slots", "--organization", "tongren", "--department", "cardiology",
         "--location", "tongren", "--first", "2031-03-03", "--last", "2031-03-03",
         "--clinic-level", "expert"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "26 slot(s) created (5 reserved" in made.output
    at = ["referral", "release-slots", "--at", "2031-03-03T20:00:00+08:00"]
    first = runner.invoke(app, at)
    assert first.exit_code == 0 and "released 5 reserved slot(s)" in first.output
    second = runner.invoke(app, at)
    assert second.exit_code == 0 and "released 0 reserved slot(s)" in second.output
    bad = runner.invoke(app, ["referral", "release-slots", "--at", "yesterday"])
    assert bad.exit_code != 0 and "--at" in bad.output
    wrong = runner.invoke(
        app,
        ["referral", "generate-slots", "--organization", "nowhere", "--department", "cardiology",
         "--location", "tongren", "--first", "2031-03-03", "--last", "2031-03-03"],
    )  # fmt: skip
    assert wrong.exit_code == 1 and "Organization/nowhere" in wrong.output
