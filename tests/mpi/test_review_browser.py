"""The steward works the review queue in a real browser (Playwright + Debian's chromium).

Set-up is scripts/demo's own command on a tiny district: ``yilian demo`` (generate with
duplicates, ``mpi dedupe``, load the district and the sure links, slots, ``users demo``,
``mpi review import``, serve). The steward signs in, opens the most likely pair, keeps it apart,
undoes that, links it, and the store shows the links; at phone width the comparison page does not
scroll sideways.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.test_browser import (
    CHROMIUM,
    YILIAN,
    _free_port,
    _no_sideways_scroll,
    _sign_in,
    chromium,
    demo_env,
)
from yilian.db import make_engine, session_factory
from yilian.fhir.store import ResourceStore
from yilian.mpi.links import person_of
from yilian.mpi.review import list_items

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/setup)"),
]
__all__ = ["chromium"]  # the module's fixture, shared


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("steward") / "data"
    env = demo_env(data)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [YILIAN, "demo", "--scale", "0.0003", "--duplicates", "0.3", "--days", "3",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300  # generates, matches and loads first
        while not _answers(f"{url}/login"):
            assert process.poll() is None, "yilian demo exited"
            assert time.monotonic() < deadline, "yilian demo did not serve within 300 s"
            time.sleep(0.25)
        yield url, data / "yilian.sqlite"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _links(database: Path, patient: str) -> list[tuple[str, str]]:
    engine = make_engine(f"sqlite:///{database}")
    try:
        with session_factory(engine)() as session:
            content = ResourceStore(session).read("Patient", patient, audit=False)
            return [(k["other"]["reference"], k["type"]) for k in content.get("link", [])]
    finally:
        engine.dispose()


def _person(database: Path, patient: str) -> set[str]:
    engine = make_engine(f"sqlite:///{database}")
    try:
        with session_factory(engine)() as session:
            return set(person_of(session, patient))
    finally:
        engine.dispose()


def _open_items(database: Path) -> list[Any]:
    engine = make_engine(f"sqlite:///{database}")
    try:
        with session_factory(engine)() as session:
            return list_items(session)
    finally:
        engine.dispose()


def _decide(page: Any, button: str, status: str) -> None:
    page.click(button)
    page.wait_for_selector("#message")
    assert page.inner_text("#item-status") == status


def test_steward_keeps_apart_undoes_and_links_a_pair(
    chromium: Any, server: tuple[str, Path]
) -> None:
    url, database = server
    items = _open_items(database)
    assert items, "the demo district put no pair in the review queue"
    top = items[0]
    before = _links(database, top.patient_a)
    page = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=url).new_page()
    _sign_in(page, "steward")
    assert page.inner_text("#fig-open") == str(len(items))
    page.click(f"#item-{top.id}")
    page.wait_for_selector("#comparison")
    verdicts = page.eval_on_selector_all(".compare-row", "rows => rows.map(r => r.dataset.verdict)")
    assert "info" in verdicts and {"agree", "disagree"} & set(verdicts)
    _decide(page, "#action-not-link", "非同一人")
    _decide(page, "#action-undo", "待复核")
    _decide(page, "#action-link", "已关联")
    assert top.patient_b in _person(database, top.patient_a)
    _decide(page, "#action-undo", "待复核")
    assert _links(database, top.patient_a) == before
    page.context.close()


def test_comparison_fits_a_phone(chromium: Any, server: tuple[str, Path]) -> None:
    url, database = server
    item = _open_items(database)[0]
    page = chromium.new_context(viewport={"width": 360, "height": 740}, base_url=url).new_page()
    _sign_in(page, "steward")
    _no_sideways_scroll(page)
    page.goto(f"/mpi/review/{item.id}")
    page.wait_for_selector("#comparison")
    _no_sideways_scroll(page)
    page.context.close()
