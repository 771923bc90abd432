"""Chronic conditions, risk factors and the measurements they drive.

Prevalence by age band and sex (``PREVALENCE``) is taken from national surveys, named beside each
row and **recalled, not re-checked** (docs/synth.md A10, tag [R]): the generator reproduces the
table, and tests hold it to the table, not to the truth. One latent "metabolic" score per person
multiplies the metabolic conditions' probabilities by a log-normal factor with mean 1, so they
cluster in the same people (diabetes with hypertension) while each keeps its marginal prevalence.
A condition is recorded (a Condition resource) only if it is diagnosed (``AWARENESS``); the
undiagnosed still show in the measurements, which is what screening is for.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field

# Age bands of the prevalence table: 18-34, 35-44, 45-54, 55-64, 65-74, 75+ (adults only).
BAND_LOWS = (18, 35, 45, 55, 65, 75)


def band_of(age: int) -> int:
    """Index into the prevalence rows, or -1 below 18."""
    if age < BAND_LOWS[0]:
        return -1
    return max(i for i, low in enumerate(BAND_LOWS) if age >= low)


@dataclass(frozen=True)
class ChronicCondition:
    key: str
    icd10: str  # WHO ICD-10 (systems.ICD10_WHO)
    display: str
    metabolic: bool
    male: tuple[float, ...]  # prevalence per band
    female: tuple[float, ...]
    awareness: float  # share of cases that are diagnosed and recorded
    source: str


CONDITIONS: tuple[ChronicCondition, ...] = (
    ChronicCondition(
        "hypertension", "I10", "Essential (primary) hypertension", True,
        (0.09, 0.20, 0.33, 0.45, 0.55, 0.60), (0.04, 0.11, 0.27, 0.44, 0.57, 0.63), 0.60,
        "China Hypertension Survey 2012-2015, Wang Z et al., Circulation 2018;137:2344 [R]",
    ),
    ChronicCondition(
        "diabetes", "E11.9", "Type 2 diabetes mellitus without complications", True,
        (0.05, 0.09, 0.14, 0.20, 0.23, 0.24), (0.03, 0.05, 0.11, 0.19, 0.24, 0.25), 0.60,
        "China 2017 diabetes survey, Li Y et al., BMJ 2020;369:m997 [R]",
    ),
    ChronicCondition(
        "dyslipidaemia", "E78.5", "Hyperlipidaemia, unspecified", True,
        (0.25, 0.38, 0.42, 0.42, 0.40, 0.38), (0.12, 0.20, 0.32, 0.42, 0.45, 0.44), 0.35,
        "China Chronic Disease and Risk Factor Surveillance 2015 (adult dyslipidaemia ~34 %) [R]",
    ),
    ChronicCondition(
        "copd", "J44.9", "Chronic obstructive pulmonary disease, unspecified", False,
        (0.02, 0.05, 0.10, 0.18, 0.28, 0.35), (0.01, 0.02, 0.04, 0.08, 0.13, 0.18), 0.25,
        "China Pulmonary Health study, Wang C et al., Lancet 2018;391:1706 [R]",
    ),
    ChronicCondition(
        "chd", "I25.9", "Chronic ischaemic heart disease, unspecified", True,
        (0.001, 0.005, 0.02, 0.05, 0.09, 0.14), (0.001, 0.003, 0.01, 0.035, 0.07, 0.12), 1.0,
        "China Cardiovascular Health and Disease Report 2019 (age gradient) [R]",
    ),
    ChronicCondition(
        "stroke", "I63.9", "Cerebral infarction, unspecified", True,
        (0.001, 0.003, 0.01, 0.025, 0.045, 0.07), (0.0005, 0.002, 0.007, 0.017, 0.032, 0.05),
        1.0, "NESS-China 2013, Wang W et al., Circulation 2017;135:759 [R]",
    ),
)  # fmt: skip
BY_KEY = {c.key: c for c in CONDITIONS}
# The contract module treats these as "chronic patients" (重点人群, seed 004 §(三)1).
KEY_POPULATION_CONDITIONS = ("hypertension", "diabetes", "copd", "chd", "stroke")

METABOLIC_SIGMA = 0.5  # spread of the latent log-factor; mean factor exp(mu + s^2/2) = 1

# Smoking (adults 15+): current / former shares by sex (assumption A11, below GATS 2018's
# national 50.5 % of men and 2.1 % of women, as Shanghai's rates are lower).
SMOKING = {"male": (0.38, 0.10), "female": (0.02, 0.005)}
# COPD risk multiplier by smoking status, normalised per sex so COPD keeps its prevalence.
_COPD_RELATIVE = {"current": 1.8, "former": 1.3, "never": 0.6}


def _copd_norm(sex: str) -> float:
    current, former = SMOKING[sex]
    never = 1 - current - former
    relative = _COPD_RELATIVE
    return current * relative["current"] + former * relative["former"] + never * relative["never"]


def prevalence(condition: ChronicCondition, age: int, sex: str) -> float:
    band = band_of(age)
    if band < 0:
        return 0.0
    return (condition.male if sex == "male" else condition.female)[band]


@dataclass
class HealthState:
    """One person's latent health: what the measurements and visits are drawn from."""

    smoking: str  # current / former / never
    metabolic: float  # latent z-score
    has: set[str] = field(default_factory=set)
    diagnosed: dict[str, dt.date] = field(default_factory=dict)  # key -> onset date
    bmi: float = 22.0
    sbp: float = 120.0
    dbp: float = 75.0
    glucose: float = 5.0
    hba1c: float = 5.4
    tc: float = 4.7
    hdl: float = 1.3

    @property
    def chronic_patient(self) -> bool:
        return any(k in self.diagnosed for k in KEY_POPULATION_CONDITIONS)


def draw_health(rng: random.Random, age: int, sex: str, end: dt.date) -> HealthState:
    current, former = SMOKING[sex]
    roll = rng.random()
    smoking = "never"
    if age >= 15:
        smoking = "current" if roll < current else "former" if roll < current + former else "never"
    z = rng.gauss(0.0, 1.0)
    state = HealthState(smoking, z)
    factor = math.exp(METABOLIC_SIGMA * z - METABOLIC_SIGMA**2 / 2)
    for condition in CONDITIONS:
        p = prevalence(condition, age, sex)
        if condition.metabolic:
            p *= factor
        elif condition.key == "copd":
            p *= _COPD_RELATIVE[smoking] / _copd_norm(sex)
        if rng.random() < min(p, 0.95):
            state.has.add(condition.key)
            if rng.random() < condition.awareness:
                years = rng.uniform(0, max(0.5, min(15.0, age - 25)))
                state.diagnosed[condition.key] = end - dt.timedelta(days=int(years * 365.25) + 30)
    _baseline(rng, state, age, sex)
    return state


def _baseline(rng: random.Random, s: HealthState, age: int, sex: str) -> None:
    """Per-person baseline values (assumption A12: simple linear models, typical Chinese means)."""
    adult_years = max(0, age - 20)
    s.bmi = min(40.0, max(16.0, rng.gauss(23.3, 2.8) + 1.0 * s.metabolic))
    s.sbp = 108 + 0.55 * adult_years + (4 if sex == "male" else 0) + rng.gauss(0, 7)
    s.dbp = 68 + 0.2 * min(adult_years, 40) + (3 if sex == "male" else 0) + rng.gauss(0, 5)
    if "hypertension" in s.has:
        s.sbp = max(s.sbp + 25, 142 + rng.gauss(6, 8))
        s.dbp += 10
        if "hypertension" in s.diagnosed:  # treated: about half reach control (<140/90)
            s.sbp -= rng.uniform(5, 22)
            s.dbp -= rng.uniform(2, 10)
    s.glucose = rng.gauss(5.0, 0.4)
    s.hba1c = rng.gauss(5.4, 0.3)
    if "diabetes" in s.has:
        s.glucose = max(7.0, rng.gauss(8.4, 1.8))
        s.hba1c = max(6.5, rng.gauss(7.6, 1.1))
        if "diabetes" in s.diagnosed:
            s.glucose -= rng.uniform(0, 1.2)
            s.hba1c -= rng.uniform(0, 0.8)
    s.tc = rng.gauss(4.6, 0.7)
    s.hdl = rng.gauss(1.2 if sex == "male" else 1.45, 0.25)
    if "dyslipidaemia" in s.has:
        s.tc += 1.1
        s.hdl -= 0.2
    s.hdl = max(0.6, s.hdl)


def waist_cm(sex: str, bmi: float) -> float:
    """Waist from BMI (assumption A12: linear fit of typical Chinese adult values)."""
    return 2.6 * bmi + 22 if sex == "male" else 2.4 * bmi + 20
