"""Two-way referral: refer-and-book, the state machine, deadlines, the queue, refer down."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.referral.conftest import (
    BOOKING_TIME,
    Network,
    cardiology_plan,
    generate,
    make_network,
)
from yilian.fhir import systems
from yilian.fhir.errors import FhirError
from yilian.fhir.service import FhirService
from yilian.referral import contracts, service
from yilian.referral import resources as rs
from yilian.referral.service import Acting, DischargeInput, ReferralInput
from yilian.referral.workflow import TRANSITIONS

CHC = Acting("chc-xinhua", "dr-chen")
DESK = Acting("tongren", "dr-zhou")
NOW = BOOKING_TIME


def sign_wang(network: Network) -> None:
    def sign(svc: FhirService) -> Any:
        return contracts.sign(
            svc.store,
            contracts.SignRequest(
                "p-wang", "dr-chen", "chc-xinhua", "tongren", "huashan", dt.date(2030, 1, 1)
            ),  # fmt: skip
        )

    network.run(sign)


def slot_status(network: Network, slot_id: str) -> str:
    with network.runtime.transaction(network.ctx) as svc:
        return str(svc.store.read("Slot", slot_id)["status"])


def refer_and_book(network: Network, slot_id: str, **extra: Any) -> service.Referral:
    data = ReferralInput("p-wang", "tongren", "血压控制不满意，两次随访 180/110", **extra)
    result: service.Referral = network.run(
        lambda svc: service.refer_and_book(svc, CHC, data, slot_id, NOW)
    )
    return result


def act(network: Network, who: Acting, task_id: str, action: str, **kw: Any) -> Any:
    return network.run(
        lambda svc: service.act(svc, who, task_id, action, NOW, **kw), org=who.organization
    )


def test_transition_table_is_explicit() -> None:
    assert TRANSITIONS["accept"].sources == ("requested", "received")
    assert TRANSITIONS["decline"].needs_reason and TRANSITIONS["decline"].target == "rejected"
    assert TRANSITIONS["cancel"].by == "requester"


def test_refer_and_book_is_atomic_and_accept_then_complete(engine: Engine) -> None:
    network = make_network(engine)
    sign_wang(network)
    reserved = generate(network, cardiology_plan()).reserved
    referral = refer_and_book(network, reserved[0], priority="urgent")
    assert slot_status(network, reserved[0]) == "busy"
    assert referral.appointment and referral.appointment["basedOn"][0]["reference"].endswith(
        referral.request["id"]
    )
    task = referral.task
    assert task["status"] == "requested"
    assert rs.tag_of(task, systems.REFERRAL_PRIORITY_GROUP) == "contracted-family-doctor"
    due = rs.parse_instant(task["restriction"]["period"]["end"])
    assert due == NOW + dt.timedelta(days=14)  # china-rules.md §4.1: urgent → 2 weeks
    # A second refer-and-book on the same slot fails whole: no orphan ServiceRequest or Task.
    with pytest.raises(FhirError) as taken:
        refer_and_book(network, reserved[0])
    assert taken.value.status == 409
    with network.runtime.transaction(network.ctx) as svc:
        found = svc.search("ServiceRequest", [("_total", "accurate")])
        assert found["total"] == 1
    accepted = act(network, DESK, task["id"], "accept")
    assert accepted.task["status"] == "accepted"
    done = act(network, DESK, task["id"], "complete")
    assert done.task["status"] == "completed" and done.request["status"] == "completed"
    with pytest.raises(FhirError) as illegal:
        act(network, DESK, task["id"], "accept")
    assert illegal.value.status == 409
    assert "cannot accept a referral whose Task.status is 'completed'" in str(illegal.value)
    with network.runtime.transaction(network.ctx) as svc:  # every transition is a version
        history, total = svc.store.history("Task", task["id"])
        assert total == 3


def test_only_the_receiving_hospital_answers_and_decline_needs_reason(engine: Engine) -> None:
    network = make_network(engine)
    reserved = generate(network, cardiology_plan()).reserved
    task = refer_and_book(network, reserved[0]).task
    with pytest.raises(FhirError) as wrong:
        act(network, Acting("huashan"), task["id"], "accept")
    assert wrong.value.status == 403 and "referral-actor" in str(wrong.value.outcome())
    with pytest.raises(FhirError) as no_reason:
        act(network, DESK, task["id"], "decline")
    assert no_reason.value.status == 400
    declined = act(network, DESK, task["id"], "decline", reason="本院该专科暂停门诊")
    assert declined.task["status"] == "rejected"
    assert declined.task["statusReason"]["text"] == "本院该专科暂停门诊"
    assert slot_status(network, reserved[0]) == "free"  # the booking was cancelled


def test_reschedule_moves_the_booking(engine: Engine) -> None:
    network = make_network(engine)
    reserved = generate(network, cardiology_plan()).reserved
    task = refer_and_book(network, reserved[0]).task
    moved = act(network, DESK, task["id"], "reschedule", reason="专家停诊", slot=reserved[1])
    assert moved.task["status"] == "accepted"
    assert slot_status(network, reserved[0]) == "free"
    assert slot_status(network, reserved[1]) == "busy"


def test_queue_orders_by_urgency_contract_and_waiting(engine: Engine) -> None:
    network = make_network(engine)
    sign_wang(network)

    def refer(patient: str, priority: str, minutes: int, by: Acting = CHC) -> str:
        data = ReferralInput(patient, "tongren", "转诊", priority)
        when = NOW + dt.timedelta(minutes=minutes)
        made = network.run(lambda svc: service.refer(svc, by, data, "up", when))
        return str(made.task["id"])

    late_routine = refer("p-li", "routine", 0)
    contracted = refer("p-wang", "routine", 30)
    urgent = refer("p-zhao", "urgent", 60)
    other = refer("p-li", "routine", -30, Acting("chc-jiangsu", "dr-liu"))
    with network.runtime.transaction(network.ctx) as svc:
        order = [t["id"] for t in service.queue(svc, "tongren")]
    assert order == [urgent, contracted, other, late_routine]
    with network.runtime.transaction(network.ctx) as svc:
        assert [t["id"] for t in service.queue(svc, "tongren", limit=2)] == order[:2]
        tasks = [svc.store.read("Task", task_id) for task_id in order]
        assert sorted(tasks, key=service.queue_key) == tasks  # the same order as the key


def test_refer_down_and_overdue_lists(engine: Engine) -> None:
    network = make_network(engine)
    sign_wang(network)
    discharge = DischargeInput(
        "p-wang", "脑梗死恢复期，出院", "每两周随访血压，康复训练", "恢复期下转社区"
    )
    down = network.run(lambda svc: service.refer_down(svc, DESK, discharge, NOW), org="tongren")
    assert down.task["owner"]["reference"] == "Organization/chc-xinhua"  # contracted CHC
    assert {d["resourceType"] for d in down.documents} == {"DocumentReference", "CarePlan"}
    urgent_up = network.run(
        lambda svc: service.refer(
            svc, CHC, ReferralInput("p-li", "tongren", "胸痛", "urgent"), "up", NOW
        )
    )
    later = NOW + dt.timedelta(days=15)
    with network.runtime.transaction(network.ctx) as svc:
        late = {t["id"] for t in service.overdue(svc, "chc-xinhua", later)}
        assert late == {down.task["id"], urgent_up.task["id"]}
        assert service.overdue(svc, "chc-xinhua", NOW + dt.timedelta(days=1)) == []
    act(network, CHC, down.task["id"], "accept")
    act(network, CHC, urgent_up.task["id"], "follow-up")
    with network.runtime.transaction(network.ctx) as svc:
        assert service.overdue(svc, "chc-xinhua", later) == []


def test_contract_rule_outside_combination_needs_referral(engine: Engine) -> None:
    network = make_network(engine)
    sign_wang(network)
    plan = cardiology_plan()
    guanghua = type(plan)("guanghua", "cardiology", "guanghua", plan.first, plan.last)
    made = generate(network, guanghua)
    public = [s for s in made.created if s not in made.reserved]
    from tests.referral.conftest import appointment

    with pytest.raises(FhirError) as outside:
        network.run(lambda svc: svc.store.create(appointment(public[0])), org=None)
    assert outside.value.status == 403
    assert "outside-contract-needs-referral" in str(outside.value.outcome())
    network.run(lambda svc: svc.store.create(appointment(public[0], patient="p-li")), org=None)
    data = ReferralInput("p-wang", "guanghua", "中西医结合康复")
    network.run(lambda svc: service.refer_and_book(svc, CHC, data, public[1], NOW))
    assert slot_status(network, public[1]) == "busy"


def test_bad_input_is_named(engine: Engine) -> None:
    network = make_network(engine)
    for data, rule in (
        (ReferralInput("p-wang", "tongren", "x", "soon"), "referral-priority"),
        (ReferralInput("p-wang", "tongren", "  "), "referral-reason"),
        (
            ReferralInput("p-wang", "tongren", "x", supporting=["Patient/p-li"]),
            "referral-supporting",
        ),
        (ReferralInput("p-wang", "chc-jiangsu", "x"), "referral-up"),
    ):
        with pytest.raises(FhirError) as bad:
            network.run(lambda svc, d=data: service.refer(svc, CHC, d, "up", NOW))
        assert rule in str(bad.value.outcome())


def test_reserved_slots_inside_the_urgent_window_are_for_urgent_referrals(engine: Engine) -> None:
    network = make_network(engine)
    reserved = generate(network, cardiology_plan()).reserved
    close = NOW + dt.timedelta(days=2)  # the clinic day is 2 days away: inside the window
    data = ReferralInput("p-li", "tongren", "胸闷", "routine")
    with pytest.raises(FhirError) as routine:
        network.run(
            lambda svc: service.refer_and_book(svc, CHC, data, reserved[0], close),
            org="chc-xinhua",
        )
    assert routine.value.status == 403 and "reserved-urgent-window" in str(routine.value.outcome())
    data.priority = "urgent"
    made = network.run(lambda svc: service.refer_and_book(svc, CHC, data, reserved[0], close))
    assert made.appointment is not None
