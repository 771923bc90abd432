"""The district as a stream of FHIR resources: directory first, then household by household.

Nothing is kept per resident after their household is written, so memory stays bounded at any
scale (the only growing state is the resident-ID counters, bounded by regions x birth dates).
Randomness: one RNG per subdistrict for who lives there, and one per resident (seeded with the
seed and the resident's id) for their health and record, so output is a pure function of
(seed, scale, years, end date, visit multiplier).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from yilian.fhir import systems
from yilian.synth import contracts
from yilian.synth.encounters import Context, Record
from yilian.synth.facilities import Facility, build_network, network_resources
from yilian.synth.fhir import Json, identifier, ref
from yilian.synth.geography import SUBDISTRICTS, district_population
from yilian.synth.health import draw_health
from yilian.synth.identifiers import ResidentIdAllocator
from yilian.synth.names import human_name
from yilian.synth.people import ADULT_AGE, Household, PeopleFactory, Person, address
from yilian.synth.staff import build_staff, staff_resources


@dataclass(frozen=True)
class SynthConfig:
    scale: float = 0.01
    years: int = 3
    seed: int = 1
    end_date: dt.date = dt.date(2026, 10, 31)
    visit_multiplier: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 10:
            raise ValueError(f"scale must be in (0, 10], got {self.scale}")
        if not 1 <= self.years <= 30:
            raise ValueError(f"years must be 1-30, got {self.years}")
        if self.visit_multiplier < 0:
            raise ValueError(f"visit multiplier must be >= 0, got {self.visit_multiplier}")


def patient(person: Person, household: Household, chc: Facility, gp: str | None) -> Json:
    """A resident: resident ID and the CHC's record number (MRN), home address, family doctor."""
    body: Json = {
        "resourceType": "Patient",
        "id": person.id,
        "identifier": [
            identifier(systems.RESIDENT_ID, person.resident_id, "NI"),
            identifier(systems.mrn_system(chc.uscc), f"{person.index:08d}", "MR"),
        ],
        "active": True,
        "name": [human_name(person.family, person.given)],
        "telecom": [
            {"system": "phone", "value": number, "use": use} for use, number in person.phones
        ],
        "gender": person.sex,
        "birthDate": person.birth_date.isoformat(),
        "address": [address(household)],
        "managingOrganization": ref("Organization", chc.key, chc.name),
    }
    if gp:
        body["generalPractitioner"] = [
            ref("Practitioner", gp),
            ref("Organization", chc.key, chc.name),
        ]
    return body


def household_group(household: Household) -> Json:
    """A household as a Group of its members (docs/synth.md "Households")."""
    return {
        "resourceType": "Group",
        "id": household.id,
        "identifier": [{"system": systems.HOUSEHOLD, "value": household.id.split("-", 1)[1]}],
        "active": True,
        "type": "person",
        "actual": True,
        "code": {"text": "户 household"},
        "name": f"{household.subdistrict.name}{household.line}",
        "quantity": len(household.members),
        "member": [{"entity": ref("Patient", p.id, p.name)} for p in household.members],
    }


class DistrictGenerator:
    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        self.populations = district_population(config.scale)
        self.network = build_network(self.populations)
        self.staff = build_staff(self.network, self.populations, config.scale)
        start = config.end_date - dt.timedelta(days=round(365.25 * config.years))
        self.context = Context(
            config.seed, start, config.end_date, self.network, self.staff, config.visit_multiplier
        )

    @property
    def residents(self) -> int:
        return sum(self.populations.values())

    def resources(self, on_household: Callable[[int], None] | None = None) -> Iterator[Json]:
        """Every resource of the district; ``on_household(n)`` after each household of n."""
        yield from network_resources(self.network)
        yield from staff_resources(self.staff, self.network)
        ids = ResidentIdAllocator(random.Random(f"{self.config.seed}/resident-ids"))
        factory = PeopleFactory(self.config.seed, self.config.end_date, ids)
        for sub in SUBDISTRICTS:
            for household in factory.households(sub, self.populations[sub.code]):
                yield from self._household(household)
                if on_household:
                    on_household(len(household.members))

    def _household(self, household: Household) -> Iterator[Json]:
        sub = household.subdistrict
        chc = self.network.chc_of(sub.code)
        doctors = self.staff.doctors(chc.key, "general-practice")
        end = self.config.end_date
        for person in household.members:
            rng = random.Random(f"{self.config.seed}/{person.id}")
            health = draw_health(rng, person.age, person.sex, end)
            women_or_child = person.age < ADULT_AGE or (person.sex == "female" and person.age < 45)
            contract = contracts.decide(
                rng, person.id,
                key_population=person.age >= contracts.KEY_AGE or health.chronic_patient,
                women_or_child=women_or_child, chc=chc.key, doctors=doctors,
                birth=person.birth_date, end=end,
            )  # fmt: skip
            gp = contract.family_doctor if contract else None
            body = patient(person, household, chc, gp)
            yield body
            if contract:
                yield contracts.care_team(contract, body, self.context.names)
                yield contracts.episode_of_care(contract, body, self.context.names)
            yield from Record(self.context, rng, person, sub.code, health, contract).resources()
        yield household_group(household)
