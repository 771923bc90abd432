"""Deleting an Appointment frees its Slot; bulk loads refuse Appointments that hold a Slot.

The booking rule is a store write hook, so it sees deletes as well as creates and updates. Bulk
NDJSON loading writes rows without hooks, so an Appointment holding a Slot is refused there (the
rule is named), while a transaction Bundle given to ``yilian load`` goes through the store and
books its Slot like ``POST /fhir``. Both databases.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from tests.referral.conftest import Network, appointment, cardiology_plan, generate, make_network
from tests.referral.test_booking import book, slot_status
from yilian.fhir.bulk.importer import Loader, LoadOptions
from yilian.fhir.runtime import RequestContext


def test_deleting_an_appointment_frees_its_slot(engine: Engine) -> None:
    network = make_network(engine)
    made = generate(network, cardiology_plan())
    public = [s for s in made.created if s not in made.reserved]
    booked = book(network, public[0], org=None)
    assert slot_status(network, public[0]) == "busy"
    network.run(lambda svc: svc.store.delete("Appointment", booked["id"]), org=None)
    assert slot_status(network, public[0]) == "free"
    again = book(network, public[0], org=None)  # bookable again, exactly once
    assert again["id"] != booked["id"] and slot_status(network, public[0]) == "busy"


def test_deleting_a_cancelled_appointment_leaves_the_slot_alone(engine: Engine) -> None:
    network = make_network(engine)
    public = [s for s in generate(network, cardiology_plan()).created][:2]
    first = book(network, public[0], org=None)
    network.run(
        lambda svc: svc.store.update("Appointment", first["id"], {**first, "status": "cancelled"}),
        org=None,
    )
    second = book(network, public[0], org=None)  # the freed slot, now someone else's
    network.run(lambda svc: svc.store.delete("Appointment", first["id"]), org=None)
    assert slot_status(network, public[0]) == "busy"  # still held by the second booking
    assert second["status"] == "booked"


def _loader(network: Network) -> Loader:
    """A loader whose runtime carries the booking rule (as ``yilian load`` installs it)."""
    return Loader(network.as_org(None), RequestContext.system(), LoadOptions(workers=0))


def test_bulk_ndjson_refuses_appointments_holding_a_slot(engine: Engine, tmp_path: Path) -> None:
    network = make_network(engine)
    loader = _loader(network)
    public = [s for s in generate(network, cardiology_plan()).created if "0800" in s[-4:]]
    history = appointment(public[0], id="hist-1")
    del history["slot"]  # a historical visit without a Slot loads as it is
    lines = [appointment(public[0], id="bulk-1"), history]
    path = tmp_path / "Appointment.ndjson"
    path.write_text("\n".join(json.dumps(a) for a in lines) + "\n", encoding="utf-8")
    report = loader.load([path])
    assert report.loaded == 1 and report.rejected == 1
    assert "bulk-appointment-holds-slot" in str(report.errors[0])
    assert slot_status(network, public[0]) == "free"


def test_bulk_transaction_bundle_books_through_the_rule(engine: Engine, tmp_path: Path) -> None:
    network = make_network(engine)
    loader = _loader(network)
    public = [s for s in generate(network, cardiology_plan()).created][:1]
    entry = {"resource": appointment(public[0]), "request": {"method": "POST",
                                                            "url": "Appointment"}}  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    first = tmp_path / "first.json"
    first.write_text(json.dumps(bundle), encoding="utf-8")
    assert loader.load([first]).loaded == 1
    assert slot_status(network, public[0]) == "busy"
    second = tmp_path / "second.json"
    second.write_text(json.dumps(bundle), encoding="utf-8")
    report = _loader(network).load([second])  # a fresh report
    assert report.loaded == 0 and report.rejected == 1
    assert "slot-busy" in str(report.errors[0])
