"""Outpatient slots for the demo district: every hospital's referral departments, two weeks ahead.

A synthetic district has facilities, departments and contracts but no Schedules or Slots (they are
the hospitals' future, not history), so ``yilian referral demo-slots`` makes them with the slot
generator and the configured reservation policy — the family doctor of the demo then finds
reserved slots to refer-and-book. The regional medical center (Tongren) offers expert clinics
(seed 004 附件4 (二)2 reserves 20 % of its expert slots for CHCs); the other hospitals general ones.
Idempotent: the generator keeps the slots that exist. Written through the bulk writer (ADR 0021):
the store path, one create and one audit entry per Slot, cost the demo ~12 CPU-seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from yilian.fhir import systems
from yilian.fhir.service import FhirService
from yilian.referral import resources as rs
from yilian.referral.contracts import HOSPITAL_TIERS
from yilian.referral.slots import SlotPlan, bulk_generate, search_all

if TYPE_CHECKING:
    from yilian.fhir.runtime import RequestContext

# Departments a CHC refers up to most for the chronic diseases it manages (hypertension,
# diabetes, COPD, stroke follow-up — contracts.CHRONIC_ICD10), offered where the hospital has them.
REFERRAL_DEPARTMENTS = ("cardiology", "endocrinology", "respiratory", "neurology")
EXPERT_CENTERS = frozenset({"tongren"})  # the regional medical center (docs/synth.md ids)


@dataclass(frozen=True)
class DemoSlots:
    schedules: int
    created: int
    reserved: int
    existing: int


def hospital_departments(service: FhirService) -> list[tuple[str, str]]:
    """(hospital, department) pairs: each hospital's department Organizations (``partOf`` it)
    whose code is one of ``REFERRAL_DEPARTMENTS``."""
    hospitals = {
        org["id"]
        for tier in HOSPITAL_TIERS
        for org in search_all(
            service, "Organization", [("type", f"{systems.ORGANIZATION_TIER}|{tier}")]
        )
    }
    pairs: set[tuple[str, str]] = set()
    for code in REFERRAL_DEPARTMENTS:
        for dept in search_all(service, "Organization", [("type", f"{systems.DEPARTMENT}|{code}")]):
            parent = rs.ref_id(dept.get("partOf"), "Organization")
            if parent is not None and parent in hospitals:
                pairs.add((parent, code))
    return sorted(pairs)


def generate_demo_slots(
    service: FhirService, ctx: RequestContext, today: dt.date, days: int
) -> DemoSlots:
    """Slots from tomorrow for ``days`` days in every (hospital, referral department), written
    in bulk (``slots.bulk_generate``: one audit entry per 1,000, as ``ctx``)."""
    first, last = today + dt.timedelta(days=1), today + dt.timedelta(days=days)
    plans = [
        SlotPlan(hospital, department, hospital, first, last,
                 clinic_level="expert" if hospital in EXPERT_CENTERS else "general")
        for hospital, department in hospital_departments(service)
    ]  # fmt: skip
    made = bulk_generate(service, ctx, plans, source=f"referral demo-slots {first}..{last}")
    return DemoSlots(
        schedules=len(made),
        created=sum(len(m.created) for m in made),
        reserved=sum(len(m.reserved) for m in made),
        existing=sum(m.existing for m in made),
    )
