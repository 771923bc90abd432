"""The mutual-recognition page: order, see the prior results on offer, recognise or decline."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.referral.conftest import make_network
from tests.referral.test_pages import PASSWORD, csrf, login
from tests.referral.test_workflow import sign_wang
from yilian.app import create_app
from yilian.auth import Role
from yilian.auth.service import create_user
from yilian.db import session_factory, unit_of_work
from yilian.fhir import systems
from yilian.fhir.service import FhirService
from yilian.referral import resources as rs

CT_CHEST = f"{systems.LOINC}|24627-2"


def prior_ct(svc: FhirService, rid: str, days_ago: int) -> None:
    when = rs.instant(dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago))
    svc.store.update("DiagnosticReport", rid, {
        "resourceType": "DiagnosticReport", "id": rid, "status": "final",
        "code": {"coding": [{"system": systems.LOINC, "code": "24627-2"}]},
        "subject": {"reference": "Patient/p-wang"}, "effectiveDateTime": when, "issued": when,
        "performer": [{"reference": "Organization/guanghua", "display": "光华医院"}],
        "conclusion": "双肺未见明显异常",
    })  # fmt: skip


def test_order_offers_prior_results_and_records_the_decision(engine: Engine) -> None:
    network = make_network(engine)
    sign_wang(network)
    network.run(lambda svc: (prior_ct(svc, "ct-recent", 10), prior_ct(svc, "ct-old", 900)))
    with unit_of_work(session_factory(engine)) as session:
        create_user(session, "fd-chen", Role.FAMILY_DOCTOR, password=PASSWORD,
                    practitioner_id="dr-chen", organization_id="chc-xinhua")  # fmt: skip
        create_user(session, "wang", Role.RESIDENT, password=PASSWORD, patient_id="p-wang")
    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    with (
        TestClient(app, follow_redirects=False) as doctor,
        TestClient(app, follow_redirects=False) as resident,
    ):
        login(doctor, "fd-chen")
        form = doctor.get("/referral/orders")
        assert form.status_code == 200 and "24627-2" in form.text
        made = doctor.post("/referral/orders", data={"patient": "p-wang", "item": CT_CHEST,
                                                     "csrf_token": csrf(form.text)})  # fmt: skip
        assert made.status_code == 200, made.text
        offered = re.findall(r'name="prior" value="([^"]+)"', made.text)
        assert offered == ["DiagnosticReport/ct-recent"]  # the 900-day-old one is outside
        assert "光华医院" in made.text and "双肺未见明显异常" in made.text
        order = re.search(r'action="/referral/orders/([^/]+)/decision"', made.text)
        assert order
        done = doctor.post(
            f"/referral/orders/{order.group(1)}/decision",
            data={"decision": "recognise", "prior": offered[0], "csrf_token": csrf(made.text)},
        )
        assert done.status_code == 200 and 'id="message"' in done.text  # fmt: skip
        twice = doctor.post(
            f"/referral/orders/{order.group(1)}/decision",
            data={"decision": "decline", "reason": "复查", "csrf_token": csrf(made.text)},
        )
        assert twice.status_code == 409  # decided once  # fmt: skip
        bad = doctor.post("/referral/orders", data={"patient": "p-wang", "item": "x|y",
                                                    "csrf_token": csrf(form.text)})  # fmt: skip
        assert bad.status_code == 400 and "recognition-item" in bad.text
        login(resident, "wang")
        assert resident.get("/referral/orders").status_code == 403  # clinicians only
    with network.runtime.transaction(network.ctx) as svc:
        stored = svc.store.read("ServiceRequest", order.group(1))
    assert stored["status"] == "revoked"  # no repeat test
    assert rs.tag_of(stored, systems.RESULT_RECOGNITION) == "recognised"
    assert {"reference": "DiagnosticReport/ct-recent"} in stored["supportingInfo"]
