"""Booking exactly once through the store's write path, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.referral.conftest import (
    CLINIC_DAY,
    Network,
    appointment,
    cardiology_plan,
    generate,
    make_network,
)
from yilian.fhir.bundle import BundleProcessor
from yilian.fhir.errors import FhirError
from yilian.fhir.service import FhirService
from yilian.referral.resources import CHINA_TIME


def book(network: Network, slot_id: str, org: str | None, **extra: Any) -> dict[str, Any]:
    def create(service: FhirService) -> dict[str, Any]:
        return service.store.create(appointment(slot_id, **extra)).resource

    result: dict[str, Any] = network.run(create, org=org)
    return result


def slot_status(network: Network, slot_id: str) -> str:
    with network.runtime.transaction(network.ctx) as service:
        return str(service.store.read("Slot", slot_id)["status"])


def error_of(network: Network, slot_id: str, org: str | None) -> FhirError:
    with pytest.raises(FhirError) as caught:
        book(network, slot_id, org)
    return caught.value


def test_public_slot_books_once_then_409_with_alternatives(engine: Engine) -> None:
    network = make_network(engine)
    made = generate(network, cardiology_plan())
    public = [s for s in made.created if s not in made.reserved]
    book(network, public[0], org=None)
    assert slot_status(network, public[0]) == "busy"
    error = error_of(network, public[0], org=None)
    assert error.status == 409
    outcome = error.outcome()
    assert "slot-busy" in outcome["issue"][0]["diagnostics"]
    alternatives = [i["diagnostics"] for i in outcome["issue"][1:]]
    assert len(alternatives) == 5 and all("alternative: Slot/" in a for a in alternatives)
    assert public[0] not in " ".join(alternatives)


def test_reserved_slot_only_for_community_requesters(engine: Engine) -> None:
    network = make_network(engine)
    reserved = generate(network, cardiology_plan()).reserved
    for outsider in (None, "huashan"):
        error = error_of(network, reserved[0], org=outsider)
        assert error.status == 403
        assert "reserved-slot-channel" in error.outcome()["issue"][0]["diagnostics"]
    assert slot_status(network, reserved[0]) == "free"  # nothing half-written
    book(network, reserved[0], org="chc-jiangsu")
    assert slot_status(network, reserved[0]) == "busy"


def test_booking_not_open_yet_is_403(engine: Engine) -> None:
    network = make_network(engine)
    later = CLINIC_DAY + dt.timedelta(days=21)
    reserved = generate(network, cardiology_plan(later, later)).reserved
    error = error_of(network, reserved[0], org="chc-xinhua")
    assert error.status == 403 and "slot-booking-not-open" in str(error.outcome())


def test_cancelling_frees_the_slot_and_unknown_slot_is_422(engine: Engine) -> None:
    network = make_network(engine)
    slot_id = generate(network, cardiology_plan()).reserved[0]
    booked = book(network, slot_id, org="chc-xinhua")

    def cancel(service: FhirService) -> None:
        service.store.update("Appointment", booked["id"], {**booked, "status": "cancelled"})

    network.run(cancel)
    assert slot_status(network, slot_id) == "free"
    error = error_of(network, "unknown-203103030800", org=None)
    assert error.status == 422 and "appointment-slot-exists" in str(error.outcome())


def test_transaction_bundle_cannot_double_book(engine: Engine) -> None:
    network = make_network(engine)
    slot_id = generate(network, cardiology_plan()).reserved[0]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": appointment(slot_id), "request": {"method": "POST", "url": "Appointment"}}
            for _ in range(2)
        ],
    }
    runtime = network.as_org("chc-xinhua")
    with (
        pytest.raises(FhirError) as caught,
        runtime.transaction(network.ctx, audit_as="transaction") as service,
    ):
        BundleProcessor(service, lambda url: ("200 OK", {})).transaction(bundle)
    assert caught.value.status == 409 and "Bundle.entry[1]" in str(caught.value)
    assert slot_status(network, slot_id) == "free"  # the whole Bundle rolled back


def test_many_racing_for_the_last_reserved_slot_exactly_one_wins(engine: Engine) -> None:
    network = make_network(engine)
    made = generate(network, cardiology_plan())
    last = made.reserved[-1]

    def take_the_rest(service: FhirService) -> None:  # every other slot is already taken
        for slot_id in made.created:
            if slot_id != last:
                service.store.create(appointment(slot_id))

    network.run(take_the_rest)
    runtime = network.as_org("chc-xinhua")

    def race(n: int) -> int:
        try:
            with runtime.transaction(network.ctx) as service:
                service.store.create(appointment(last, patient=("p-wang", "p-li", "p-zhao")[n % 3]))
            return 201
        except FhirError as error:
            return error.status

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(race, range(24)))
    assert sorted(statuses) == [201] + [409] * 23
    with network.runtime.transaction(network.ctx) as service:
        found = service.search("Appointment", [("slot", f"Slot/{last}"), ("_total", "accurate")])
        assert found["total"] == 1
        assert service.store.read("Slot", last)["status"] == "busy"
    assert CHINA_TIME.utcoffset(None) == dt.timedelta(hours=8)
