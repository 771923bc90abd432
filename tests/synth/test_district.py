"""The generated district: validity, identifiers, distributions, households, references."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from tests.synth.conftest import END, SMALL
from yilian.fhir import systems
from yilian.fhir.validation import validate_resource
from yilian.mpi.resident_id import parse_resident_id
from yilian.synth import contracts
from yilian.synth.facilities import build_network
from yilian.synth.geography import district_population
from yilian.synth.health import BY_KEY, prevalence
from yilian.synth.staff import build_staff

District = dict[str, list[dict[str, Any]]]
EXPECTED_TYPES = {
    "Organization", "Location", "Practitioner", "PractitionerRole", "Patient", "Group",
    "CareTeam", "EpisodeOfCare", "Condition", "Encounter", "Observation", "DiagnosticReport",
    "ServiceRequest", "Task",
}  # fmt: skip
SAMPLE = 150  # resources validated per type


def age(patient: dict[str, Any]) -> int:
    birth = dt.date.fromisoformat(patient["birthDate"])
    return END.year - birth.year - ((END.month, END.day) < (birth.month, birth.day))


def test_every_resource_type_is_present_and_a_sample_of_each_is_valid(district: District) -> None:
    assert set(district) == EXPECTED_TYPES
    for resources in district.values():
        step = max(1, len(resources) // SAMPLE)
        for resource in resources[::step]:
            validate_resource(resource)


def test_population_is_exact_at_small_scale(district: District) -> None:
    assert len(district["Patient"]) == sum(district_population(SMALL.scale).values())


def test_resident_ids_are_valid_unique_and_match_sex_and_birth(district: District) -> None:
    values = set()
    for patient in district["Patient"]:
        (value,) = [i["value"] for i in patient["identifier"] if i["system"] == systems.RESIDENT_ID]
        parsed = parse_resident_id(value)
        assert parsed.sex == patient["gender"]
        assert parsed.birth_date.isoformat() == patient["birthDate"]
        values.add(value)
    assert len(values) == len(district["Patient"])
    local = sum(v.startswith("310105") for v in values) / len(values)
    assert 0.7 < local < 0.8  # assumption A8: 75 % registered in Changning


def test_age_and_sex_structure_matches_shanghai_2020(district: District) -> None:
    # china-rules.md §7: 0-14 9.8 %, 60+ 23.4 %, 65+ 16.3 %; n ≈ 6,900 so one SD ≈ 0.5 pp.
    ages = [age(p) for p in district["Patient"]]
    n = len(ages)
    assert sum(a <= 14 for a in ages) / n == pytest.approx(0.098, abs=0.015)
    assert sum(a >= 60 for a in ages) / n == pytest.approx(0.234, abs=0.02)
    assert sum(a >= 65 for a in ages) / n == pytest.approx(0.163, abs=0.02)
    men = sum(p["gender"] == "male" for p in district["Patient"]) / n
    assert 0.48 < men < 0.53


def test_diagnosed_prevalence_follows_the_table(district: District) -> None:
    patients = {p["id"]: p for p in district["Patient"]}
    recorded = Counter(
        (c["subject"]["reference"].split("/")[1], c["code"]["coding"][0]["code"])
        for c in district["Condition"]
    )
    for key in ("hypertension", "diabetes"):
        condition = BY_KEY[key]
        expected = sum(
            prevalence(condition, age(p), p["gender"]) * condition.awareness
            for p in patients.values()
        )
        observed = sum(1 for (_, code), n in recorded.items() if code == condition.icd10)
        # binomial-ish spread plus the capped latent factor: allow 4 SD
        assert abs(observed - expected) < 4 * expected**0.5, (key, observed, expected)


def test_contract_coverage_near_the_plan_targets(district: District) -> None:
    # seed 004: 48 % of all residents, 80 % of key populations (65+ or chronic patients).
    contracted = {e["patient"]["reference"].split("/")[1] for e in district["EpisodeOfCare"]}
    chronic = {
        c["subject"]["reference"].split("/")[1]
        for c in district["Condition"]
        if c["code"]["coding"][0]["code"] in {"I10", "E11.9", "J44.9", "I25.9", "I63.9"}
    }
    patients = district["Patient"]
    key = [p for p in patients if age(p) >= contracts.KEY_AGE or p["id"] in chronic]
    assert len(contracted) / len(patients) == pytest.approx(0.48, abs=0.025)
    assert sum(p["id"] in contracted for p in key) / len(key) == pytest.approx(0.80, abs=0.03)


def test_contracts_carry_the_1_1_1_choice(district: District) -> None:
    roles = Counter()
    for team in district["CareTeam"]:
        tiers = [p["role"][0]["coding"][0]["code"] for p in team["participant"]]
        assert tiers == list(contracts.ROLES)
        roles[team["participant"][2]["member"]["reference"]] += 1
    assert roles.most_common(1)[0][0] == "Organization/tongren"


def test_every_patient_belongs_to_one_household_with_an_adult(district: District) -> None:
    members = Counter()
    ages = {p["id"]: age(p) for p in district["Patient"]}
    for group in district["Group"]:
        ids = [m["entity"]["reference"].split("/")[1] for m in group["member"]]
        members.update(ids)
        assert max(ages[i] for i in ids) >= 18
    assert set(members) == set(ages) and set(members.values()) == {1}
    mean_size = len(ages) / len(district["Group"])
    assert 2.0 < mean_size < 2.7  # Shanghai 2020: 2.32 (assumption A9)


def test_children_carry_a_household_adults_surname(district: District) -> None:
    """Siblings and a parent share the surname: the family hard negatives of patient matching."""
    patients = {p["id"]: p for p in district["Patient"]}
    children = 0
    for group in district["Group"]:
        members = [patients[m["entity"]["reference"].split("/")[1]] for m in group["member"]]
        adults = {p["name"][0]["family"] for p in members if age(p) >= 18}
        for child in (p for p in members if age(p) < 18):
            assert child["name"][0]["family"] in adults, group["id"]
            children += 1
    assert children > 300  # about 10 % of 6,900 residents (0-14: 9.8 %)


def test_respiratory_visits_peak_in_winter_and_gastro_in_summer(district: District) -> None:
    months: dict[str, Counter[int]] = {"resp": Counter(), "gi": Counter()}
    for encounter in district["Encounter"]:
        code = encounter["reasonCode"][0]["coding"][0]["code"]
        month = int(encounter["period"]["start"][5:7])
        if code in {"J06.9", "J11.1", "J20.9", "J02.9"}:
            months["resp"][month] += 1
        elif code in {"A09", "A08.4", "K52.9"}:
            months["gi"][month] += 1
    winter, summer = (12, 1, 2), (6, 7, 8)
    assert sum(months["resp"][m] for m in winter) > 2 * sum(months["resp"][m] for m in summer)
    assert sum(months["gi"][m] for m in summer) > 1.5 * sum(months["gi"][m] for m in winter)


def test_fever_clinic_inpatient_and_referrals_are_in_the_record(district: District) -> None:
    services = Counter(e["serviceType"]["coding"][0]["code"] for e in district["Encounter"])
    classes = Counter(e["class"]["code"] for e in district["Encounter"])
    assert services["fever-clinic"] > 100 and classes["IMP"] > 100
    urgent = [s for s in district["ServiceRequest"] if s["priority"] == "urgent"]
    assert urgent and all(s["category"][0]["coding"][0]["code"] == "3457005" for s in urgent)
    open_tasks = [t for t in district["Task"] if t["status"] != "completed"]
    assert len(district["Task"]) == len(district["ServiceRequest"]) and open_tasks


def test_every_reference_resolves_within_the_output(district: District) -> None:
    known = {f"{t}/{r['id']}" for t, resources in district.items() for r in resources}
    missing = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            reference = node.get("reference")
            if isinstance(reference, str) and reference not in known:
                missing.add(reference)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for resources in district.values():
        for resource in resources:
            walk(resource)
    assert missing == set()


def test_care_network_and_capacity() -> None:
    network = build_network(district_population(1.0))
    tiers = Counter(f.tier for f in network.facilities)
    assert tiers["community"] == 10 and tiers["station"] == 44 and tiers["municipal"] == 3
    tongren = network.by_key("tongren")
    assert tongren.beds == 1200 and tongren.fever_clinic
    for facility in network.facilities:
        # seed 004: ICU and convertible ICU beds each at least 10 % of beds where there is an ICU
        if "icu" in facility.departments:
            assert facility.icu_beds * 10 >= facility.beds
            assert facility.convertible_icu_beds * 10 >= facility.beds


def test_family_doctors_at_4_5_per_10000_residents() -> None:
    populations = district_population(1.0)
    staff = build_staff(build_network(populations), populations, 1.0)
    gps = sum(1 for m in staff.members if m.department == "general-practice" and m.role == "doctor")
    assert gps == pytest.approx(693_051 * 4.5 / 10_000, abs=6)
