"""Slot generation from the reservation policy, and the release of unused reserved slots."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from tests.referral.conftest import CLINIC_DAY, cardiology_plan, generate, make_network
from yilian.fhir import systems
from yilian.fhir.errors import FhirError
from yilian.referral import resources as rs
from yilian.referral.policy import reservation_policy
from yilian.referral.slots import SlotPlan, release_reserved_slots, reserved_positions


def test_reserved_positions_spread_the_share_evenly() -> None:
    assert reserved_positions(10, 0.2) == {4, 9}
    assert len(reserved_positions(26, 0.2)) == 5  # round(5.2)
    assert reserved_positions(26, 0.0) == set()
    assert len(reserved_positions(7, 1.0)) == 7


def test_policy_regional_center_reserves_a_fifth_of_expert_slots() -> None:
    policy = reservation_policy()
    expert = policy.for_department("tongren", "cardiology", "expert")
    assert expert.reserved_share == 0.2  # seed 004 annex 4 (二)2
    assert expert.chc_advance_days == 5  # china-rules.md §8
    assert 2 <= expert.urgent_window_days <= 3


def test_generator_creates_schedule_and_slots_once(engine: Engine) -> None:
    network = make_network(engine)
    first = generate(network, cardiology_plan(CLINIC_DAY, CLINIC_DAY + dt.timedelta(days=6)))
    # Mon..Fri, 08:00-11:30 and 13:30-16:30 in 15-minute slots = 14 + 12 = 26 a day.
    assert len(first.created) == 5 * 26
    assert len(first.reserved) == 5 * 5
    again = generate(network, cardiology_plan(CLINIC_DAY, CLINIC_DAY + dt.timedelta(days=6)))
    assert again.created == [] and again.existing == 5 * 26
    with network.runtime.transaction(network.ctx) as service:
        slot = service.store.read("Slot", first.reserved[0])
        assert rs.slot_channel(slot) == "community-referral"
        start = rs.parse_instant(slot["start"])
        release = rs.parse_instant(rs.extension(slot, systems.EXT_SLOT_RELEASE_TIME))
        opens = rs.parse_instant(rs.extension(slot, systems.EXT_SLOT_BOOKING_OPENS))
        assert start and release and opens
        assert start - release == dt.timedelta(hours=24)
        assert start - opens == dt.timedelta(days=7 + 5)  # public window + 5 days earlier
        found = service.search(
            "Slot", [("_tag", f"{systems.SLOT_CHANNEL}|community-referral"), ("_total", "accurate")]
        )
        assert found["total"] == 25


def test_generator_rejects_bad_plans(engine: Engine) -> None:
    network = make_network(engine)
    with pytest.raises(FhirError) as bad_level:
        generate(network, SlotPlan("tongren", "cardiology", "tongren", CLINIC_DAY, CLINIC_DAY,
                                   clinic_level="vip"))  # fmt: skip
    assert bad_level.value.status == 400 and "clinic-level" in str(bad_level.value.outcome())
    with pytest.raises(FhirError) as backwards:
        generate(network, cardiology_plan(CLINIC_DAY, CLINIC_DAY - dt.timedelta(days=1)))
    assert "slot-date-range" in str(backwards.value.outcome())
    with pytest.raises(FhirError) as unknown:
        generate(network, SlotPlan("nowhere", "cardiology", "tongren", CLINIC_DAY, CLINIC_DAY))
    assert unknown.value.status == 404


def test_release_returns_unused_reserved_slots_once(engine: Engine) -> None:
    network = make_network(engine)
    made = generate(network, cardiology_plan())
    morning = dt.datetime.combine(CLINIC_DAY, dt.time(8), rs.CHINA_TIME)
    before = morning - dt.timedelta(days=2)
    with network.runtime.transaction(network.ctx) as service:
        assert release_reserved_slots(service, before) == []
    # At 12:00 the day before, the morning's reserved slots (release at start - 24 h) are due.
    noon = morning - dt.timedelta(hours=20)
    with network.runtime.transaction(network.ctx) as service:
        released = release_reserved_slots(service, noon)
    morning_reserved = [s for s in made.reserved if int(s[-4:-2]) < 12]
    assert sorted(released) == sorted(morning_reserved) and released
    with network.runtime.transaction(network.ctx) as service:
        assert release_reserved_slots(service, noon) == []  # idempotent
        slot = service.store.read("Slot", released[0])
        assert rs.slot_channel(slot) is None
        assert rs.tag_of(slot, systems.SLOT_CHANNEL) == "released-to-public"
        assert slot["meta"]["versionId"] == "2"
