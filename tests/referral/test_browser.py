"""Refer-and-book and the desk's accept in a real browser (Playwright driving Debian's chromium).

A SQLite store is prepared in-process (the small network of tests/referral/conftest.py, a 1+1+1
contract, a day of expert slots with the reserved fifth), ``yilian serve`` serves it, and two
people use it through the sign-in form: the family doctor refers his resident up and books a
reserved slot in one step; the hospital's referral desk finds it first in its queue and accepts
it; the family doctor then sees it accepted. The second test walks the README's demo flow: sign a
resident to a 1+1+1 contract, refer up and book, the desk accepts and later refers down, the
resident sees contract, referrals and where-and-when notices, the manager's figures change.
Needs /usr/bin/chromium (scripts/setup installs it).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.referral.conftest import seed_network
from yilian.auth import Role
from yilian.auth.service import create_user
from yilian.db import make_engine, session_factory, unit_of_work
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.referral import contracts
from yilian.referral.slots import SlotPlan, generate_slots
from yilian.schema import upgrade_to_head

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "referral-browser-1"
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


def _prepare(data: Path) -> None:
    engine = make_engine(f"sqlite:///{data / 'yilian.sqlite'}")
    upgrade_to_head(engine)
    runtime = Runtime(engine, "http://x/fhir")
    day = dt.date.today() + dt.timedelta(days=3)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    with runtime.transaction(RequestContext.system("system/test")) as svc:
        seed_network(svc)
        contracts.sign(svc.store, contracts.SignRequest(
            "p-wang", "dr-chen", "chc-xinhua", "tongren", "huashan", dt.date.today()))  # fmt: skip
        generate_slots(svc, SlotPlan("tongren", "cardiology", "tongren", day, day, "expert"))
    with unit_of_work(session_factory(engine)) as session:
        create_user(session, "fd-chen", Role.FAMILY_DOCTOR, password=PASSWORD,
                    practitioner_id="dr-chen", organization_id="chc-xinhua")  # fmt: skip
        create_user(session, "desk-zhou", Role.SPECIALIST, password=PASSWORD,
                    practitioner_id="dr-zhou", organization_id="tongren")  # fmt: skip
        create_user(session, "li", Role.RESIDENT, password=PASSWORD, patient_id="p-li")
        create_user(session, "mgr", Role.MANAGER, password=PASSWORD)
    engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("referral-browser")
    _prepare(data)
    env = {**os.environ, "YILIAN_DATA_DIR": str(data), "YILIAN_ADMIN_PASSWORD": "admin-pass-1"}
    env.pop("YILIAN_DATABASE_URL", None)
    port = _free_port()
    process = subprocess.Popen(
        [YILIAN, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, "yilian serve exited"
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _sign_in(chromium: Any, url: str, username: str) -> Any:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#who")
    return page


def test_refer_and_book_then_accept(server: str) -> None:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox"])  # fmt: skip
        doctor = _sign_in(chromium, server, "fd-chen")
        doctor.goto("/referral/new")
        doctor.select_option("#patient", "p-wang")
        doctor.select_option("#target", "tongren")
        doctor.click("#show-slots")
        doctor.wait_for_selector("#slots")
        assert doctor.locator("#slots tbody tr").count() == 5  # the reserved fifth of 26
        doctor.select_option("#priority", "urgent")
        doctor.fill("#reason", "血压控制不满意，两次随访 180/110")
        doctor.click("#refer-and-book")
        doctor.wait_for_selector("#message")
        assert "/referral/mine" in doctor.url
        assert "待处理" in doctor.inner_text("#made")
        desk = _sign_in(chromium, server, "desk-zhou")
        desk.goto("/referral/queue")
        row = desk.locator("#queue tbody tr").first
        assert "p-wang" in row.inner_text() and "签约居民" in row.inner_text()
        row.locator("button.primary").click()
        desk.wait_for_selector("#message")
        assert desk.locator("#queue tbody tr[data-task]").count() == 0
        doctor.goto("/referral/mine")
        assert "已接受" in doctor.inner_text("#made")
        chromium.close()


def _figure(page: Any, url: str, figure: str) -> int:
    page.goto("/referral/stats")
    return int(page.inner_text(f"#fig-{figure}"))


def test_demo_flow_contract_refer_accept_down_resident_manager(server: str) -> None:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox"])  # fmt: skip
        manager = _sign_in(chromium, server, "mgr")
        before = {f: _figure(manager, server, f) for f in ("up", "down", "slots-used")}
        doctor = _sign_in(chromium, server, "fd-chen")
        doctor.click("#nav-referral-contract")
        doctor.fill("#patient", "p-li")
        doctor.select_option("#district_hospital", "tongren")
        doctor.select_option("#municipal_hospital", "huashan")
        doctor.click("#contract-submit")
        doctor.wait_for_selector("#show-slots")  # on to refer-and-book, the resident chosen
        assert doctor.locator("#patient").input_value() == "p-li"
        doctor.select_option("#target", "tongren")
        doctor.click("#show-slots")
        doctor.wait_for_selector("#slots")
        doctor.select_option("#priority", "urgent")
        doctor.fill("#reason", "活动后胸闷两周")
        doctor.click("#refer-and-book")
        doctor.wait_for_selector("#message")
        desk = _sign_in(chromium, server, "desk-zhou")
        desk.click("#nav-referral-queue")
        row = desk.locator("#queue tbody tr[data-task]", has_text="p-li").first
        row.locator("button.primary").click()
        desk.wait_for_selector("#message")
        assert desk.locator("#queue tbody tr[data-task]", has_text="p-li").count() == 0
        desk.click("#nav-referral-down")
        desk.fill("#patient", "p-li")
        desk.fill("#summary", "冠脉造影未见明显狭窄，诊断稳定型心绞痛")
        desk.fill("#follow_up_plan", "每两周社区随访血压、心率")
        desk.fill("#reason", "病情稳定下转")
        desk.click("#refer-down-submit")
        desk.wait_for_selector("#message")
        resident = _sign_in(chromium, server, "li")
        resident.click("#nav-referral-me")
        assert "同仁" in resident.inner_text("#contract")
        notices = resident.inner_text("#notices")
        assert "上海市同仁医院" in notices and "每两周社区随访" in notices
        assert resident.locator("#referrals tbody tr").count() == 2  # up and down
        assert resident.locator("#appointments tbody tr").count() == 1
        after = {f: _figure(manager, server, f) for f in ("up", "down", "slots-used")}
        assert after == {"up": before["up"] + 1, "down": before["down"] + 1,
                         "slots-used": before["slots-used"] + 1}  # fmt: skip
        chromium.close()
