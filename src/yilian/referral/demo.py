"""Outpatient slots for the demo district: every hospital's referral departments, two weeks ahead.

A synthetic district has facilities, departments and contracts but no Schedules or Slots (they are
the hospitals' future, not history), so ``yilian referral demo-slots`` makes them with the slot
generator and the configured reservation policy — the family doctor of the demo then finds
reserved slots to refer-and-book. The regional medical center (Tongren) offers expert clinics
(seed 004 附件4 (二)2 reserves 20 % of its expert slots for CHCs); the other hospitals general ones.
Idempotent: the generator keeps the slots that exist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from yilian.fhir import systems
from yilian.fhir.service import FhirService
from yilian.referral import resources as rs
from yilian.referral.contracts import HOSPITAL_TIERS
from yilian.referral.slots import SlotPlan, generate_slots, search_all

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


def generate_demo_slots(service: FhirService, today: dt.date, days: int) -> DemoSlots:
    """Slots from tomorrow for ``days`` days in every (hospital, referral department)."""
    first, last = today + dt.timedelta(days=1), today + dt.timedelta(days=days)
    schedules = created = reserved = existing = 0
    for hospital, department in hospital_departments(service):
        level = "expert" if hospital in EXPERT_CENTERS else "general"
        made = generate_slots(
            service, SlotPlan(hospital, department, hospital, first, last, clinic_level=level)
        )
        schedules += 1
        created += len(made.created)
        reserved += len(made.reserved)
        existing += made.existing
    return DemoSlots(schedules, created, reserved, existing)
