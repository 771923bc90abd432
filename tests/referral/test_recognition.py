"""Mutual recognition: offer a prior result within the item's window, recognise or decline."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from tests.referral.conftest import BOOKING_TIME, make_network
from yilian.fhir import systems
from yilian.fhir.errors import FhirError
from yilian.fhir.service import FhirService
from yilian.referral import recognition
from yilian.referral import resources as rs
from yilian.referral.policy import recognition_item, recognition_items
from yilian.referral.service import Acting

NOW = BOOKING_TIME
DOCTOR = Acting("tongren", "dr-zhou")
CT_CHEST = (systems.LOINC, "24627-2")


def report(svc: FhirService, rid: str, days_ago: int, patient: str = "p-wang") -> None:
    svc.store.update(
        "DiagnosticReport",
        rid,
        {
            "resourceType": "DiagnosticReport",
            "id": rid,
            "status": "final",
            "code": {"coding": [{"system": systems.LOINC, "code": "24627-2"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": rs.instant(NOW - dt.timedelta(days=days_ago)),
            "issued": rs.instant(NOW - dt.timedelta(days=days_ago)),
            "performer": [{"reference": "Organization/chc-xinhua", "display": "新华社区"}],
            "conclusion": "双肺未见明显异常",
            "presentedForm": [{"contentType": "application/pdf", "url": f"https://pacs/{rid}"}],
        },
    )


def test_default_items_are_configured() -> None:
    item = recognition_item(*CT_CHEST)
    assert item is not None and item.kind == "imaging" and item.validity_days > 0
    assert {i.kind for i in recognition_items()} == {"lab", "imaging"}


def test_offer_within_window_then_recognise(engine: Engine) -> None:
    network = make_network(engine)
    network.run(lambda svc: (report(svc, "ct-recent", 20), report(svc, "ct-old", 400),
                             report(svc, "ct-other", 5, "p-li")))  # fmt: skip
    request, offers = network.run(
        lambda svc: recognition.order(svc, DOCTOR, "p-wang", *CT_CHEST, NOW), org="tongren"
    )
    assert [o.reference for o in offers] == ["DiagnosticReport/ct-recent"]
    assert offers[0].links == ("https://pacs/ct-recent",)
    assert rs.tag_of(request, systems.RESULT_RECOGNITION) == "offered"
    with pytest.raises(FhirError) as wrong_prior:
        network.run(lambda svc: recognition.decide(svc, DOCTOR, request["id"], recognise=True,
                                                   prior="DiagnosticReport/ct-old", reason=None,
                                                   now=NOW))  # fmt: skip
    assert "recognition-prior" in str(wrong_prior.value.outcome())
    decided = network.run(
        lambda svc: recognition.decide(svc, DOCTOR, request["id"], recognise=True,
                                       prior="DiagnosticReport/ct-recent", reason=None, now=NOW)
    )  # fmt: skip
    assert decided["status"] == "revoked"
    assert rs.tag_of(decided, systems.RESULT_RECOGNITION) == "recognised"
    with network.runtime.transaction(network.ctx) as svc:
        assert recognition.counts(svc) == {
            "offered": 1, "recognised": 1, "declined": 0, "avoided_repeat_tests": 1,
        }  # fmt: skip


def test_decline_needs_a_reason_and_unknown_items_are_refused(engine: Engine) -> None:
    network = make_network(engine)
    network.run(lambda svc: report(svc, "ct-recent", 3))
    request, _ = network.run(lambda svc: recognition.order(svc, DOCTOR, "p-wang", *CT_CHEST, NOW))
    with pytest.raises(FhirError) as no_reason:
        network.run(lambda svc: recognition.decide(svc, DOCTOR, request["id"], recognise=False,
                                                   prior=None, reason=" ", now=NOW))  # fmt: skip
    assert "recognition-reason" in str(no_reason.value.outcome())
    declined = network.run(
        lambda svc: recognition.decide(svc, DOCTOR, request["id"], recognise=False, prior=None,
                                       reason="病情变化，需复查", now=NOW)
    )  # fmt: skip
    assert declined["status"] == "active"
    assert rs.tag_of(declined, systems.RESULT_RECOGNITION) == "declined"
    with pytest.raises(FhirError) as unknown:
        network.run(lambda svc: recognition.order(svc, DOCTOR, "p-wang", systems.LOINC, "0-0", NOW))
    assert "recognition-item" in str(unknown.value.outcome())
