"""The refer-and-book page's slot list: the target hospital's reserved slots, marked when they
are inside the urgent window (routine referrals cannot take them, china-rules.md §8)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from tests.referral.conftest import CLINIC_DAY, cardiology_plan, generate, make_network
from yilian.referral import web
from yilian.referral.resources import CHINA_TIME
from yilian.referral.slots import SlotPlan


@pytest.mark.parametrize(("days_before", "urgent"), [(2, 5), (6, 0)])
def test_slot_list_marks_the_urgent_window(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, days_before: int, urgent: int
) -> None:
    network = make_network(engine)
    generate(network, cardiology_plan())
    generate(network, SlotPlan("guanghua", "cardiology", "guanghua", CLINIC_DAY, CLINIC_DAY))
    moment = dt.datetime.combine(CLINIC_DAY, dt.time(7), CHINA_TIME) - dt.timedelta(days_before)
    monkeypatch.setattr(web, "_now", lambda: moment)
    with network.runtime.transaction(network.ctx) as svc:
        slots = web._slots(svc, "tongren")
    assert len(slots) == 5 and all(s["id"].startswith("tongren-") for s in slots)
    assert sum(s["urgent_only"] for s in slots) == urgent
