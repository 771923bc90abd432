"""The referral pages through the sign-in form: refer-and-book, the facility's list, the queue."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.referral.conftest import make_network
from tests.referral.test_api import next_weekday
from tests.referral.test_workflow import sign_wang
from yilian.app import create_app
from yilian.auth import Role
from yilian.auth.service import create_user
from yilian.db import session_factory, unit_of_work
from yilian.referral.slots import SlotPlan, generate_slots

PASSWORD = "referral-pages-1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(client: TestClient, username: str) -> None:
    token = CSRF.search(client.get("/login").text)
    assert token
    form = {"username": username, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"}
    assert client.post("/login", data=form).status_code == 303


def csrf(page_text: str) -> str:
    found = CSRF.search(page_text)
    assert found
    return found.group(1)


def test_refer_and_book_then_desk_accepts(engine: Engine) -> None:
    network = make_network(engine)
    sign_wang(network)
    day = next_weekday(3)
    with network.runtime.transaction(network.ctx) as svc:
        generate_slots(svc, SlotPlan("tongren", "cardiology", "tongren", day, day, "expert"))
    with unit_of_work(session_factory(engine)) as session:
        create_user(session, "fd-chen", Role.FAMILY_DOCTOR, password=PASSWORD,
                    practitioner_id="dr-chen", organization_id="chc-xinhua")  # fmt: skip
        create_user(session, "desk-zhou", Role.SPECIALIST, password=PASSWORD,
                    practitioner_id="dr-zhou", organization_id="tongren")  # fmt: skip
        create_user(session, "mgr", Role.MANAGER, password=PASSWORD)
        create_user(session, "wang", Role.RESIDENT, password=PASSWORD, patient_id="p-wang")
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    with (
        TestClient(app, follow_redirects=False) as doctor,
        TestClient(app, follow_redirects=False) as desk,
    ):
        assert doctor.get("/referral/new").status_code == 303  # sign in first
        login(doctor, "fd-chen")
        page = doctor.get("/referral/new", params={"patient": "p-wang", "target": "tongren"})
        assert page.status_code == 200 and "社区预留号源" in page.text
        slots = re.findall(r'name="slot" value="([^"]+)"', page.text)
        assert len(slots) == 5  # the reserved fifth of the day's 26 expert slots
        form = {"patient": "p-wang", "target": "tongren", "slot": slots[0], "priority": "urgent",
                "reason": "血压控制不满意", "csrf_token": csrf(page.text)}  # fmt: skip
        booked = doctor.post("/referral/new", data=form)
        assert booked.status_code == 303 and booked.headers["location"].startswith("/referral/mine")
        again = doctor.post("/referral/new", data=form)
        assert again.status_code == 409 and "slot-busy" in again.text
        mine = doctor.get("/referral/mine")
        assert mine.status_code == 200 and "已提交转诊" not in mine.text
        assert "p-wang" in mine.text and "待处理" in mine.text
        login(desk, "desk-zhou")
        queue = desk.get("/referral/queue")
        assert queue.status_code == 200 and "签约居民（家庭医生转诊）" in queue.text
        task = re.search(r'data-task="([^"]+)"', queue.text)
        assert task
        form = {"csrf_token": csrf(queue.text), "next": "/referral/queue"}
        refused = desk.post(f"/referral/tasks/{task.group(1)}/decline", data=form)
        assert refused.status_code == 400 and "referral-reason" in refused.text
        done = desk.post(f"/referral/tasks/{task.group(1)}/accept", data=form)
        assert done.status_code == 303
        after = desk.get("/referral/queue?done=accept")
        assert (
            "已完成操作：accept" in after.text and f'data-task="{task.group(1)}"' not in after.text
        )
        assert "已接受" in doctor.get("/referral/mine").text
        assert doctor.get("/referral/queue").status_code == 200
        assert desk.get("/referral/new").status_code == 403
        assert desk.get("/referral/stats").status_code == 403
    with TestClient(app, follow_redirects=False) as manager:
        login(manager, "mgr")
        figures = manager.get("/referral/stats")
        assert figures.status_code == 200 and "转诊运行情况" in figures.text
        assert re.search(r'id="fig-up">1<', figures.text)
        assert re.search(r'id="fig-slots-used">1<', figures.text)
    with TestClient(app, follow_redirects=False) as resident:
        login(resident, "wang")
        mine = resident.get("/referral/me")
        assert mine.status_code == 200
        assert "上海市同仁医院" in mine.text  # where to go (the clinic's Location)
        assert "家庭医生" in mine.text and "已接受" in mine.text
    assert dt.date.today() < day
