"""The demo district's slots: every hospital's referral departments, reserved share by policy."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from tests.referral.conftest import CLINIC_DAY, make_network
from yilian.fhir import systems
from yilian.fhir.service import FhirService
from yilian.referral import resources as rs
from yilian.referral.demo import generate_demo_slots, hospital_departments
from yilian.referral.resources import COMMUNITY_REFERRAL


def department(hospital: str, code: str) -> dict[str, object]:
    return {
        "resourceType": "Organization",
        "id": f"{hospital}-{code}",
        "type": [{"coding": [{"system": systems.DEPARTMENT, "code": code}]}],
        "partOf": {"reference": f"Organization/{hospital}"},
    }


def test_demo_slots_cover_the_hospitals_referral_departments(engine: Engine) -> None:
    network = make_network(engine)

    def seed(service: FhirService) -> None:
        for hospital, code in (
            ("tongren", "cardiology"),
            ("guanghua", "respiratory"),
            ("guanghua", "orthopaedics"),
            ("chc-xinhua", "cardiology"),
        ):
            service.store.update("Organization", f"{hospital}-{code}", department(hospital, code))

    # fmt: skip

    network.run(seed, org=None)
    sunday = CLINIC_DAY - dt.timedelta(days=1)
    with network.runtime.transaction(network.ctx) as service:
        # orthopaedics is no referral department here; a CHC's department is no hospital's
        assert hospital_departments(service) == [("guanghua", "respiratory"),
                                                 ("tongren", "cardiology")]  # fmt: skip
        made = generate_demo_slots(
            service, network.ctx, sunday, 7
        )  # Mon..Sat: five outpatient days
    assert (made.schedules, made.created, made.reserved) == (2, 2 * 5 * 26, 2 * 5 * 5)
    with network.runtime.transaction(network.ctx) as service:
        # written in bulk (no write hook): the reserved ones are still found by their channel tag
        tagged = service.search(
            "Slot",
            [("_tag", f"{systems.SLOT_CHANNEL}|{COMMUNITY_REFERRAL}"), ("_summary", "count")],
        )
        assert tagged["total"] == 2 * 5 * 5
        again = generate_demo_slots(service, network.ctx, sunday, 7)
        assert again.created == 0 and again.existing == 2 * 5 * 26
        expert = service.store.read("Schedule", "tongren-cardiology-expert")
        assert rs.code_of(expert["serviceCategory"], systems.CLINIC_LEVEL) == "expert"
        general = service.store.read("Schedule", "guanghua-respiratory-general")
        assert rs.ref_id(general["actor"][0], "Location") == "guanghua"
