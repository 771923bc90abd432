"""Family-doctor contracts with the Shanghai "1+1+1" choice (china-rules.md §8).

Coverage targets: 48 % of all residents and 80 % of key populations by 2025 (seed 004, (三)1:
"全人群、重点人群签约覆盖率分别达到 48%和 80%以上"). Key population here = aged 65+ or a diagnosed
chronic patient (hypertension, diabetes, COPD, CHD, stroke), since "priority for residents aged
60+ and chronic patients" (china-rules.md §8); we use 65+ as the key-population age (the older
adults of the basic public health service, china-rules.md §4.3) — assumption A13. Others sign
with the probability that makes overall coverage 48 % (``OTHER_RATE``, solved from the age
structure and prevalence tables).

A contract is an EpisodeOfCare (type = family-doctor contract, managed by the CHC, care manager
= the family doctor) whose team is a CareTeam listing the three choices: the family doctor on
behalf of the CHC, one district hospital and one municipal hospital.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from yilian.fhir import systems
from yilian.synth.fhir import Json, concept, ref
from yilian.synth.health import BY_KEY, KEY_POPULATION_CONDITIONS, prevalence
from yilian.synth.people import AGE_BANDS, male_share

TARGET_OVERALL = 0.48
TARGET_KEY = 0.80
KEY_AGE = 65
CONTRACTS_SINCE = dt.date(2016, 1, 1)  # 1+1+1 from 2015 (china-rules.md §8)

ROLES = {
    "family-doctor": "家庭医生",
    "community-health-center": "签约社区卫生服务中心",
    "district-hospital": "签约区级医疗机构",
    "municipal-hospital": "签约市级医疗机构",
}
CONTRACT_CODE, CONTRACT_DISPLAY = "contract", "家庭医生签约服务 1+1+1"
# Choice weights (assumption A13): the regional medical center is the usual district choice.
DISTRICT_CHOICES = (("tongren", 0.55), ("guanghua", 0.2), ("tianshan-tcm", 0.15), ("mch", 0.1))
MUNICIPAL_CHOICES = (("huashan", 0.35), ("ruijin", 0.35), ("zhongshan", 0.3))


def _key_share() -> float:
    """Expected share of key-population residents (independence between conditions assumed)."""
    total = key = 0.0
    for low, high, share in AGE_BANDS:
        for age in range(low, high + 1):
            weight = share / (high - low + 1)
            total += weight
            if age >= KEY_AGE:
                key += weight
                continue
            male = male_share(age)
            for sex, sex_weight in (("male", male), ("female", 1 - male)):
                none = 1.0
                for name in KEY_POPULATION_CONDITIONS:
                    condition = BY_KEY[name]
                    none *= 1 - prevalence(condition, age, sex) * condition.awareness
                key += weight * sex_weight * (1 - none)
    return key / total


KEY_SHARE = _key_share()
OTHER_RATE = (TARGET_OVERALL - TARGET_KEY * KEY_SHARE) / (1 - KEY_SHARE)


@dataclass(frozen=True)
class Contract:
    id: str
    family_doctor: str  # Practitioner id
    chc: str  # facility keys
    district_hospital: str
    municipal_hospital: str
    start: dt.date


def decide(
    rng: random.Random,
    patient_id: str,
    *,
    key_population: bool,
    women_or_child: bool,
    chc: str,
    doctors: list[str],
    birth: dt.date,
    end: dt.date,
) -> Contract | None:
    """Whether this resident has signed, and the 1+1+1 choice if so."""
    if rng.random() >= (TARGET_KEY if key_population else OTHER_RATE):
        return None
    district_weights = [
        w * (5 if k == "mch" and women_or_child else 1) for k, w in DISTRICT_CHOICES
    ]
    district = rng.choices([k for k, _ in DISTRICT_CHOICES], district_weights)[0]
    municipal = rng.choices([k for k, _ in MUNICIPAL_CHOICES], [w for _, w in MUNICIPAL_CHOICES])[0]
    first = max(CONTRACTS_SINCE, birth)
    span = max(0, (end - first).days - 7)
    start = first + dt.timedelta(days=rng.randrange(span + 1))
    return Contract(f"{patient_id}-fdc", rng.choice(doctors), chc, district, municipal, start)


def care_team(contract: Contract, patient: Json, names: dict[str, str]) -> Json:
    def participant(role: str, member: Json, on_behalf_of: str | None = None) -> Json:
        entry: Json = {
            "role": [concept(systems.FAMILY_DOCTOR_CONTRACT, role, ROLES[role])],
            "member": member,
        }
        if on_behalf_of:
            entry["onBehalfOf"] = ref("Organization", on_behalf_of, names[on_behalf_of])
        return entry

    return {
        "resourceType": "CareTeam",
        "id": contract.id,
        "status": "active",
        "category": [concept(systems.FAMILY_DOCTOR_CONTRACT, CONTRACT_CODE, CONTRACT_DISPLAY)],
        "name": "家庭医生签约团队 1+1+1",
        "subject": ref("Patient", patient["id"]),
        "period": {"start": contract.start.isoformat()},
        "participant": [
            participant("family-doctor", ref("Practitioner", contract.family_doctor), contract.chc),
            participant(
                "community-health-center", ref("Organization", contract.chc, names[contract.chc])
            ),
            participant(
                "district-hospital",
                ref("Organization", contract.district_hospital, names[contract.district_hospital]),
            ),
            participant(
                "municipal-hospital",
                ref(
                    "Organization", contract.municipal_hospital, names[contract.municipal_hospital]
                ),
            ),
        ],
        "managingOrganization": [ref("Organization", contract.chc, names[contract.chc])],
    }


def episode_of_care(contract: Contract, patient: Json, names: dict[str, str]) -> Json:
    return {
        "resourceType": "EpisodeOfCare",
        "id": contract.id,
        "status": "active",
        "type": [concept(systems.FAMILY_DOCTOR_CONTRACT, CONTRACT_CODE, CONTRACT_DISPLAY)],
        "patient": ref("Patient", patient["id"]),
        "managingOrganization": ref("Organization", contract.chc, names[contract.chc]),
        "period": {"start": contract.start.isoformat()},
        "careManager": ref("Practitioner", contract.family_doctor),
        "team": [ref("CareTeam", contract.id)],
    }
