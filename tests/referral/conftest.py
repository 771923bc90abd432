"""A small care network for the referral tests: hospitals, CHCs, a family doctor, residents."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from yilian.fhir import systems
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.fhir.service import FhirService
from yilian.referral.booking import booking_hook
from yilian.referral.resources import CHINA_TIME
from yilian.referral.slots import SlotPlan, generate_slots

# A Monday far enough ahead that nothing in the tests depends on today's date.
CLINIC_DAY = dt.date(2031, 3, 3)
# Four days ahead: inside every booking window, outside the 3-day urgent window (policy).
BOOKING_TIME = dt.datetime.combine(CLINIC_DAY, dt.time(9), CHINA_TIME) - dt.timedelta(days=4)

NETWORK = {
    "tongren": ("上海市同仁医院", "district-regional"),
    "guanghua": ("上海市光华中西医结合医院", "district-regional"),
    "huashan": ("复旦大学附属华山医院", "municipal"),
    "ruijin": ("上海交通大学医学院附属瑞金医院", "municipal"),
    "chc-xinhua": ("新华街道社区卫生服务中心", "community"),
    "chc-jiangsu": ("江苏街道社区卫生服务中心", "community"),
}


def organization(key: str) -> dict[str, Any]:
    name, tier = NETWORK[key]
    return {
        "resourceType": "Organization",
        "id": key,
        "active": True,
        "type": [{"coding": [{"system": systems.ORGANIZATION_TIER, "code": tier}]}],
        "name": name,
    }


def seed_network(service: FhirService) -> None:
    store = service.store
    for key in NETWORK:
        store.update("Organization", key, organization(key))
        location = {
            "resourceType": "Location",
            "id": key,
            "name": NETWORK[key][0],
            "managingOrganization": {"reference": f"Organization/{key}"},
        }
        store.update("Location", key, location)
    for pid, birth in (("p-wang", "1950-04-01"), ("p-li", "1990-07-15"), ("p-zhao", "1985-01-01")):
        store.update(
            "Patient",
            pid,
            {"resourceType": "Patient", "id": pid, "gender": "male", "birthDate": birth},
        )
    for dr in ("dr-chen", "dr-liu", "dr-zhou"):
        store.update("Practitioner", dr, {"resourceType": "Practitioner", "id": dr, "active": True})


@dataclass
class Network:
    engine: Engine
    runtime: Runtime
    ctx: RequestContext

    def as_org(self, org: str | None, now: dt.datetime = BOOKING_TIME) -> Runtime:
        """A runtime whose requests come from a user of ``org`` at the fixed ``now``."""
        runtime = Runtime(self.engine, "http://testserver/fhir")
        runtime.write_hooks.append(lambda _ctx: booking_hook(org, lambda: now))
        return runtime

    def run(self, fn: Callable[[FhirService], Any], org: str | None = "chc-xinhua") -> Any:
        with self.as_org(org).transaction(self.ctx) as service:
            return fn(service)


def make_network(engine: Engine) -> Network:
    runtime = Runtime(engine, "http://testserver/fhir")
    ctx = RequestContext.system("system/test")
    with runtime.transaction(ctx) as service:
        seed_network(service)
    return Network(engine, runtime, ctx)


def cardiology_plan(first: dt.date = CLINIC_DAY, last: dt.date = CLINIC_DAY) -> SlotPlan:
    return SlotPlan("tongren", "cardiology", "tongren", first, last, clinic_level="expert")


def generate(network: Network, plan: SlotPlan) -> Any:
    with network.runtime.transaction(network.ctx) as service:
        return generate_slots(service, plan)


def appointment(slot_id: str, patient: str = "p-wang", **extra: Any) -> dict[str, Any]:
    start = dt.datetime.strptime(slot_id[-12:], "%Y%m%d%H%M").replace(tzinfo=CHINA_TIME)
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "booked",
        "start": start.isoformat(),
        "end": (start + dt.timedelta(minutes=15)).isoformat(),
        "slot": [{"reference": f"Slot/{slot_id}"}],
        "participant": [
            {"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"},
        ],
    }
    body.update(extra)
    return body
