"""``yilian demo`` (scripts/demo): one process prepares the whole demo, and a re-run reuses it.

The serving half is driven in a real browser by tests/mpi/test_review_browser.py; here the
preparation alone (``--no-serve``) on a tiny district, run twice on one SQLite store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from yilian.auth.service import find_user
from yilian.cli import app
from yilian.db import make_engine, session_factory
from yilian.fhir import search
from yilian.mpi.models import BlockingKeyRow
from yilian.mpi.review import list_items

ARGS = ["demo", "--no-serve", "--scale", "0.0003", "--duplicates", "0.3", "--days", "3",
        "--workers", "0"]  # fmt: skip


def _count(session: Session, res_type: str) -> int:
    bundle = search.search(session, res_type, [("_summary", "count")], base_url="http://x")
    return int(bundle["total"])


def test_demo_prepares_everything_then_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("YILIAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("YILIAN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("YILIAN_ADMIN_PASSWORD", "demo-admin-pass-1")
    first = CliRunner().invoke(app, ARGS)
    assert first.exit_code == 0, first.output
    assert (tmp_path / "synth" / "Patient.ndjson").is_file()
    assert not (tmp_path / "synth.partial").exists() and not (tmp_path / "mpi.partial").exists()
    engine = make_engine(f"sqlite:///{tmp_path / 'yilian.sqlite'}")
    try:
        with session_factory(engine)() as session:
            for name in ("admin", "doctor", "specialist", "resident", "steward"):
                assert find_user(session, name) is not None, name
            slots = _count(session, "Slot")
            assert slots > 0
            assert list_items(session), "no pair in the steward's review queue"
            # the batch job's sure links were loaded as new versions of the Patients
            linked = [
                e["resource"]
                for e in search.search(
                    session, "Patient", [("_count", "1000")], base_url="http://x"
                ).get("entry", [])
                if e["resource"].get("link")
            ]
            assert linked and all(p["meta"]["versionId"] == "2" for p in linked)
            # every loaded Patient is in the real-time match's key index (the loader defers it)
            keyed = session.execute(
                select(func.count(distinct(BlockingKeyRow.patient_id)))
            ).scalar_one()
            assert keyed == _count(session, "Patient")
        again = CliRunner().invoke(app, ARGS)
        assert again.exit_code == 0, again.output
        assert "0 loaded" in again.output and "0 slot(s) created" in again.output
        assert "generate the district" not in again.output
        assert "patient matching over" not in again.output
        with session_factory(engine)() as session:
            assert _count(session, "Slot") == slots
    finally:
        engine.dispose()
