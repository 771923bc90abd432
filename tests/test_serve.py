"""``yilian serve --workers N``: several server processes, for PostgreSQL only."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from yilian.cli import app


def test_workers_need_postgresql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YILIAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("YILIAN_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2 and "needs PostgreSQL" in result.output


def test_workers_are_counted_from_one() -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "0"])
    assert result.exit_code == 2 and "--workers" in result.output
