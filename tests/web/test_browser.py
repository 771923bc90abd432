"""The pages in a real browser: Debian's chromium driven by Playwright, against a real server.

Set-up follows scripts/demo on a tiny district: ``yilian synth`` (scale 0.0003, about 200
residents, dated to today), ``yilian load``, ``yilian users demo`` (the auth engineer's demo
users, password ``yilian-demo``), then ``yilian serve`` in a subprocess. Each role signs in
through the form; the numbers shown are compared with a direct FHIR search of the same store
(``_summary=count``), charts must have drawn a canvas, the language switch must work, a family
doctor must be refused a record outside his panel, and at phone width no page may scroll
sideways. Needs /usr/bin/chromium (scripts/setup installs it).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from yilian.auth import Role
from yilian.auth.demo import DEMO_PASSWORD
from yilian.auth.policy import may_read_patient
from yilian.auth.service import find_user, principal_of
from yilian.db import make_engine, session_factory
from yilian.fhir import search

CHROMIUM = Path("/usr/bin/chromium")
SCALE = "0.0003"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/setup)"),
]
playwright_api = pytest.importorskip("playwright.sync_api")
YILIAN = str(Path(sys.executable).with_name("yilian"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([YILIAN, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"yilian {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


class Demo:
    def __init__(self, url: str, data: Path, district: Path) -> None:
        self.url = url
        self.engine = make_engine(f"sqlite:///{data / 'yilian.sqlite'}")
        self.users = {u["role"]: u for u in json.loads((district / "demo-users.json").read_text())}

    def count(self, res_type: str, params: list[tuple[str, str]]) -> int:
        """A direct FHIR search of the store the server serves (no policy: the truth)."""
        with session_factory(self.engine)() as session:
            bundle = search.search(
                session, res_type, [*params, ("_summary", "count")], base_url="http://x"
            )
        return int(bundle["total"])

    def ids(self, res_type: str, part_of: str) -> list[str]:
        with session_factory(self.engine)() as session:
            bundle = search.search(
                session,
                res_type,
                [("partof", f"Organization/{part_of}"), ("_count", "1000")],
                base_url="http://x",
            )
        return [e["resource"]["id"] for e in bundle.get("entry", [])]

    def user(self, role: Role) -> dict[str, Any]:
        found: dict[str, Any] = self.users[role.value]
        return found


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """``yilian serve`` on a free port with ``env``, until the block ends; yields its URL."""
    port = _free_port()
    server = subprocess.Popen(
        [YILIAN, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "yilian serve exited"
            time.sleep(0.25)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def demo_env(data: Path) -> dict[str, str]:
    """The environment of the demo's commands: SQLite under ``data``, a known admin password."""
    env = {**os.environ, "YILIAN_DATA_DIR": str(data), "YILIAN_ADMIN_PASSWORD": "admin-pass-1"}
    env.pop("YILIAN_DATABASE_URL", None)
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("browser")
    district, data = root / "district", root / "data"
    env = demo_env(data)
    _run(["synth", "--scale", SCALE, "--out", str(district), "--end-date", "today"], env)
    _run(["load", str(district)], env)
    _run(["users", "demo", str(district)], env)
    with serving(env) as url:
        result = Demo(url, data, district)
        yield result
        result.engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


def _page(chromium: Any, demo: Demo, *, phone: bool = False) -> Any:
    size = {"width": 360, "height": 740} if phone else {"width": 1280, "height": 900}
    context = chromium.new_context(viewport=size, base_url=demo.url)
    context.set_default_timeout(20_000)
    return context.new_page()


def _sign_in(page: Any, username: str) -> None:
    page.goto("/")
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#who")


def _number(page: Any, selector: str) -> str:
    return str(page.inner_text(selector)).strip()


def _chart_drawn(page: Any, chart_id: str) -> None:
    page.wait_for_selector(f"#chart-{chart_id}[data-rendered='true'] canvas")
    width = page.eval_on_selector(f"#chart-{chart_id} canvas", "c => c.width")
    assert width > 0


def _no_sideways_scroll(page: Any) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page scrolls sideways: {widths}"


def test_manager_sees_the_district_and_switches_language(chromium: Any, demo: Demo) -> None:
    page = _page(chromium, demo)
    _sign_in(page, demo.user(Role.MANAGER)["username"])
    assert _number(page, "#fig-residents") == str(demo.count("Patient", []))
    contracts = demo.count("EpisodeOfCare", [("status", "active"), ("type", "contract")])
    assert _number(page, "#fig-contracts") == str(contracts)
    _chart_drawn(page, "visits-by-tier")
    assert page.inner_text("h1") == "全区概况"
    page.click("#lang-en")
    page.wait_for_selector("#lang-zh-CN")
    assert page.inner_text("h1") == "The district today"
    _chart_drawn(page, "visits-by-tier")
    page.click("#logout")
    page.wait_for_selector("#login-form")
    page.context.close()


def test_family_doctor_panel_record_and_refusal(chromium: Any, demo: Demo) -> None:
    doctor = demo.user(Role.FAMILY_DOCTOR)
    page = _page(chromium, demo)
    _sign_in(page, doctor["username"])
    panel = demo.count(
        "EpisodeOfCare",
        [("care-manager", f"Practitioner/{doctor['practitioner_id']}"), ("status", "active")],
    )
    assert _number(page, "#fig-panel") == str(panel)
    first = page.locator("#panel tbody tr a").first
    name = first.inner_text()
    first.click()
    page.wait_for_selector("#patient-name")
    assert page.inner_text("#patient-name") == name
    if page.locator("#chart-trend-bp").count():
        _chart_drawn(page, "trend-bp")
    outsider = _patient_outside_panel(demo, doctor["username"])
    page.goto(f"/patients/{outsider}")
    page.wait_for_selector("#denied")
    assert page.locator("#break-glass-form").count() == 1
    assert page.locator("#patient-name").count() == 0
    page.context.close()


def _patient_outside_panel(demo: Demo, username: str) -> str:
    with session_factory(demo.engine)() as session:
        user = find_user(session, username)
        assert user is not None
        principal = principal_of(user)
        bundle = search.search(
            session, "Patient", [("_count", "1000"), ("_elements", "id")], base_url="http://x"
        )
        for pid in sorted(e["resource"]["id"] for e in bundle.get("entry", [])):
            if not may_read_patient(session, principal, str(pid)):
                return str(pid)
    raise AssertionError("every patient is visible to the family doctor")


def test_other_roles_see_their_home_pages(chromium: Any, demo: Demo) -> None:
    page = _page(chromium, demo)
    _sign_in(page, demo.user(Role.CDC)["username"])
    _chart_drawn(page, "syndromes")
    assert re.fullmatch(r"\d+", _number(page, "#fig-respiratory"))
    page.click("#logout")

    specialist = demo.user(Role.SPECIALIST)
    _sign_in(page, specialist["username"])
    org = specialist["organization_id"]
    # referrals to the hospital or one of its departments
    targets = ",".join(f"Organization/{o}" for o in [org, *demo.ids("Organization", org)])
    assert _number(page, "#fig-referrals-total") == str(
        demo.count("ServiceRequest", [("performer", targets)])
    )
    page.click("#logout")

    facility = demo.user(Role.FACILITY_ADMIN)
    _sign_in(page, facility["username"])
    doctors = demo.count(
        "PractitionerRole",
        [("organization", f"Organization/{facility['organization_id']}"), ("role", "doctor")],
    )
    assert _number(page, "#fig-staff-doctor") == str(doctors)
    page.click("#logout")
    page.context.close()


def test_phone_width_pages_do_not_scroll_sideways(chromium: Any, demo: Demo) -> None:
    page = _page(chromium, demo, phone=True)
    page.goto("/login")
    _no_sideways_scroll(page)
    resident = demo.user(Role.RESIDENT)
    _sign_in(page, resident["username"])
    assert page.inner_text("#patient-name")
    _no_sideways_scroll(page)
    page.goto(f"/patients/{resident['patient_id']}")
    page.wait_for_selector("#timeline")
    _no_sideways_scroll(page)
    page.click("#logout")
    _sign_in(page, demo.user(Role.FAMILY_DOCTOR)["username"])
    _no_sideways_scroll(page)
    page.context.close()
