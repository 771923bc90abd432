"""A referral's page: what was asked, its booking and its messages, and a note to the other side."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.referral.conftest import make_network
from tests.referral.test_api import next_weekday
from tests.referral.test_pages import PASSWORD, csrf, login
from tests.referral.test_workflow import CHC, sign_wang
from yilian.app import create_app
from yilian.auth import Role
from yilian.auth.service import create_user
from yilian.db import session_factory, unit_of_work
from yilian.referral import service
from yilian.referral.service import ReferralInput
from yilian.referral.slots import SlotPlan, generate_slots


def test_referral_page_shows_the_thread_and_sends_a_note(engine: Engine) -> None:
    network = make_network(engine)
    sign_wang(network)
    day = next_weekday(4)
    with network.runtime.transaction(network.ctx) as svc:
        made = generate_slots(svc, SlotPlan("tongren", "cardiology", "tongren", day, day, "expert"))
    data = ReferralInput("p-wang", "tongren", "血压控制不满意", "urgent")
    referral = network.run(
        lambda svc: service.refer_and_book(
            svc, CHC, data, made.reserved[-1], dt.datetime.now(dt.UTC)
        )
    )
    task = referral.task["id"]
    with unit_of_work(session_factory(engine)) as session:
        create_user(session, "fd-chen", Role.FAMILY_DOCTOR, password=PASSWORD,
                    practitioner_id="dr-chen", organization_id="chc-xinhua")  # fmt: skip
        create_user(session, "desk-zhou", Role.SPECIALIST, password=PASSWORD,
                    practitioner_id="dr-zhou", organization_id="tongren")  # fmt: skip
        create_user(session, "wang", Role.RESIDENT, password=PASSWORD, patient_id="p-wang")
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    with (
        TestClient(app, follow_redirects=False) as doctor,
        TestClient(app, follow_redirects=False) as desk,
        TestClient(app, follow_redirects=False) as resident,
    ):
        login(doctor, "fd-chen")
        mine = doctor.get("/referral/mine")
        assert f'href="/referral/tasks/{task}"' in mine.text  # each row links to its page
        page = doctor.get(f"/referral/tasks/{task}")
        assert page.status_code == 200 and "血压控制不满意" in page.text
        rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td>", page.text)
        assert rows == ["转诊通知", "就诊指引"]  # referred; where and when for the resident
        sent = doctor.post(
            f"/referral/messages/{task}",
            data={"text": "患者行动不便，请安排陪诊", "csrf_token": csrf(page.text)},
        )
        assert sent.status_code == 303 and sent.headers["location"].endswith("?sent=1")  # fmt: skip
        login(desk, "desk-zhou")
        seen = desk.get(f"/referral/tasks/{task}")
        assert "患者行动不便，请安排陪诊" in seen.text and "Organization/tongren" in seen.text
        login(resident, "wang")
        assert resident.get(f"/referral/tasks/{task}").status_code == 403  # clinicians' page
