"""Practitioners and their roles at each facility.

Staffing rules: CHC general practitioners at 4.5 per 10,000 residents of the catchment (seed 004:
"社区全科医生数达到 4.5 名每万常住人口"; annex 6 indicator 9: 0.45 per 1,000); nurses at 1.3 per
doctor (annex 6 indicators 7-8: 8.15 nurses and 6.2 doctors per 1,000); CDC staff at 1.75 per
10,000 (seed 004: "每万人口疾病预防控制人员数达 1.75 名"). Hospital doctors at 0.35 per bed
scaled with the district (assumption A6). Staff names come from an RNG fixed by the facility,
not the seed, so the directory is the same in every run at the same scale.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from yilian.fhir import systems
from yilian.synth.facilities import DEPARTMENTS, Facility, Network
from yilian.synth.fhir import Json, coding, concept, identifier, ref
from yilian.synth.identifiers import licence_number
from yilian.synth.names import given_name, human_name, surname

GP_PER_10K = 4.5
NURSES_PER_DOCTOR = 8.15 / 6.2
CDC_STAFF_PER_10K = 1.75
HOSPITAL_DOCTORS_PER_BED = 0.35  # assumption A6
_NON_CLINICAL = frozenset({"laboratory", "radiology", "icu", "public-health"})


@dataclass(frozen=True)
class Staff:
    id: str
    facility: str  # facility key
    department: str  # DEPARTMENTS code
    role: str  # HL7 practitioner-role code: doctor / nurse
    family: str
    given: str
    gender: str

    @property
    def name(self) -> str:
        return self.family + self.given


@dataclass
class StaffDirectory:
    """Who works where: the encounter generator picks clinicians from here."""

    members: list[Staff] = field(default_factory=list)
    _doctors: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, member: Staff) -> None:
        self.members.append(member)
        if member.role == "doctor":
            self._doctors.setdefault((member.facility, member.department), []).append(member.id)

    def doctors(self, facility: str, department: str) -> list[str]:
        return self._doctors.get((facility, department), [])

    def any_doctor(self, facility: str, department: str) -> list[str]:
        """Doctors of the department, else of the facility's first staffed department."""
        found = self.doctors(facility, department)
        if found:
            return found
        return next(ids for (fac, _), ids in self._doctors.items() if fac == facility)


def _counts(facility: Facility, population: int, scale: float) -> dict[str, int]:
    """Doctors per department of one facility."""
    if facility.tier == "station":
        return {}
    if facility.type == "chc":
        return {"general-practice": max(1, round(population * GP_PER_10K / 10_000))}
    if facility.type == "cdc":
        return {"infectious-disease-control": max(2, round(population * CDC_STAFF_PER_10K / 1e4))}
    clinical = [d for d in facility.departments if d not in _NON_CLINICAL] or list(
        facility.departments
    )
    total = max(len(clinical), round(facility.beds * HOSPITAL_DOCTORS_PER_BED * scale))
    return {d: total // len(clinical) + (i < total % len(clinical)) for i, d in enumerate(clinical)}


def build_staff(network: Network, populations: dict[str, int], scale: float) -> StaffDirectory:
    directory = StaffDirectory()
    district_total = sum(populations.values())
    for facility in network.facilities:
        rng = random.Random(f"staff/{facility.key}")
        population = (
            populations[facility.subdistrict]
            if facility.type == "chc" and facility.subdistrict
            else district_total
        )  # a CHC serves its catchment (assumption A3); the CDC the district
        serial = 0
        for dept, doctors in _counts(facility, population, scale).items():
            nurses = round(doctors * NURSES_PER_DOCTOR) if facility.type != "cdc" else 0
            for role, count in (("doctor", doctors), ("nurse", nurses)):
                for _ in range(count):
                    serial += 1
                    sex = (
                        "female" if rng.random() < (0.55 if role == "doctor" else 0.95) else "male"
                    )
                    year = rng.randrange(1965, 1998)
                    family, given = surname(rng), given_name(rng, sex, year)
                    member = Staff(
                        f"{facility.key}-{role}-{serial:04d}",
                        facility.key,
                        dept,
                        role,
                        family,
                        given,
                        sex,
                    )
                    directory.add(member)
    return directory


def practitioner(member: Staff) -> Json:
    rng = random.Random(f"practitioner/{member.id}")
    return {
        "resourceType": "Practitioner",
        "id": member.id,
        "identifier": [
            identifier(
                systems.PRACTITIONER_LICENCE, licence_number(rng, 2000 + rng.randrange(20)), "LN"
            )
        ],
        "active": True,
        "name": [human_name(member.family, member.given)],
        "gender": member.gender,
    }


def practitioner_role(member: Staff, network: Network) -> Json:
    facility = network.by_key(member.facility)
    locations = [ref("Location", facility.key, facility.name)]
    if facility.type == "chc" and member.role == "doctor":
        # CHC family doctors also staff the catchment's stations (seed 004: 中心 + 站 network).
        stations = network.stations_of(facility.subdistrict or "")
        if stations:
            station = stations[int(member.id.rsplit("-", 1)[1]) % len(stations)]
            locations.append(ref("Location", station.key, station.name))
    codes = [concept(systems.HL7_PRACTITIONER_ROLE, member.role)]
    if facility.type == "chc" and member.role == "doctor":
        codes.append(concept(systems.FAMILY_DOCTOR_CONTRACT, "family-doctor", "家庭医生"))
    return {
        "resourceType": "PractitionerRole",
        "id": member.id,
        "active": True,
        "practitioner": ref("Practitioner", member.id, member.name),
        "organization": ref("Organization", facility.key, facility.name),
        "code": codes,
        "specialty": [
            {
                "coding": [
                    coding(systems.DEPARTMENT, member.department, DEPARTMENTS[member.department])
                ]
            }
        ],
        "location": locations,
    }


def staff_resources(directory: StaffDirectory, network: Network) -> Iterator[Json]:
    for member in directory.members:
        yield practitioner(member)
        yield practitioner_role(member, network)
