"""Managers' figures through the analytics views (live over the store, or a refresh's Parquet)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import Engine

from tests.referral.conftest import cardiology_plan, generate, make_network
from tests.referral.test_workflow import CHC, DESK, NOW, act, refer_and_book, sign_wang
from yilian.analytics.catalog import core_views
from yilian.analytics.query import views_over
from yilian.referral import service, stats
from yilian.referral.service import DischargeInput
from yilian.referral.slots import release_reserved_slots


def test_figures_come_from_the_views_live_and_from_a_refresh(
    engine: Engine, tmp_path: Path
) -> None:
    network = make_network(engine)
    sign_wang(network)
    made = generate(network, cardiology_plan())
    first = refer_and_book(network, made.reserved[0], priority="urgent")
    second = refer_and_book(network, made.reserved[1], priority="urgent")
    act(network, DESK, first.task["id"], "accept")
    act(network, DESK, first.task["id"], "complete")
    act(network, DESK, second.task["id"], "decline", reason="专科停诊")  # frees its slot
    network.run(
        lambda svc: service.refer_down(
            svc, DESK, DischargeInput("p-wang", "出院小结", "每月随访", "康复期下转"), NOW
        ),
        org="tongren",
    )
    later = NOW + dt.timedelta(days=4)  # past every reserved slot's release time
    with network.runtime.transaction(network.ctx) as svc:
        returned = release_reserved_slots(svc, later)
    assert len(returned) == 4  # five reserved, one used by the completed referral
    with network.runtime.transaction(network.ctx) as svc:
        live = stats.summary(svc, now=later)
    month = NOW.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m")
    assert live["flows"] == [
        {"direction": "down", "from": "tongren", "to": "chc-xinhua", "month": month, "count": 1},
        {"direction": "up", "from": CHC.organization, "to": "tongren", "month": month, "count": 2},
    ]
    assert (live["up_referrals"], live["down_referrals"]) == (2, 1)
    assert live["up_completion_rate"] == 0.5
    assert live["open_waiting_days_median"] == 4.0  # the down-referral, open for four days
    # booked at NOW (four days before the clinic day, 08:00 and 09:15 +08:00 slots)
    assert live["booking_lead_days_median"] is not None and 3 < live["booking_lead_days_median"] < 5
    assert live["reserved_slots"] == {"used": 1, "unused_reserved": 0, "returned_to_public": 4}
    # The same figures from Parquet views as a refresh writes them (one file per view).
    with network.runtime.transaction(network.ctx) as svc:
        selection = list(stats.referral_resources(svc))
    names = (*stats.VIEWS, "referrals")
    computed = views_over(selection, stats.VIEWS)
    for name in names:
        pq.write_table(computed.query(f"SELECT * FROM {name}"), tmp_path / f"{name}.parquet")
    computed.close()
    with network.runtime.transaction(network.ctx) as svc:
        refreshed = stats.summary(svc, now=later, views=tmp_path)
    assert refreshed == live
    assert {"requester", "deadline"} <= {
        c["name"] for c in core_views()["referral_tasks"]["select"][0]["column"]
    }
