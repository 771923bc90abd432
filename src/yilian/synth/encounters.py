"""One resident's record over the years: conditions, visits, measurements, reports, referrals.

Visit rates, reasons, lengths of stay and the split between CHC and hospitals are assumptions
(docs/synth.md A14-A17). Rules from sources: hypertension and diabetes patients have at least
four face-to-face follow-ups a year and an urgent referral when SBP ≥ 180 or DBP ≥ 110, followed
up within two weeks (basic public health service, 3rd ed., china-rules.md §4.1); people 65+ have
a yearly health check (§4.3). Respiratory visits peak in winter and gastrointestinal visits in
summer (``RESPIRATORY_SEASON`` / ``GI_SEASON``, assumption A15).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from yilian.fhir import systems
from yilian.synth import observations as obs
from yilian.synth.contracts import Contract
from yilian.synth.facilities import DEPARTMENTS, Facility, Network
from yilian.synth.fhir import Json, coding, concept, ref
from yilian.synth.health import BY_KEY, HealthState, waist_cm
from yilian.synth.people import Person
from yilian.synth.staff import StaffDirectory

CHINA_TIME = dt.timezone(dt.timedelta(hours=8))
# Relative visit weight by month, January first (assumption A15).
RESPIRATORY_SEASON = (1.8, 1.6, 1.3, 1.0, 0.8, 0.6, 0.6, 0.6, 0.7, 0.9, 1.3, 1.8)
GI_SEASON = (0.7, 0.7, 0.8, 0.9, 1.1, 1.4, 1.7, 1.7, 1.3, 1.0, 0.8, 0.7)
FOLLOW_UPS_PER_YEAR = 4  # china-rules.md §4.1
URGENT_SBP, URGENT_DBP = 180, 110  # china-rules.md §4.1 urgent referral
REFERRAL_FOLLOW_UP_DAYS = 14  # §4.1: active follow-up of the referral within 2 weeks
REFERRAL_CATEGORY = ("3457005", "Patient referral")  # SNOMED CT, R4 servicerequest-category
FEVER_SHARE = 0.3  # share of respiratory visits seen at a fever clinic (assumption A16)

RESPIRATORY = (("J06.9", "Acute upper respiratory infection, unspecified", 55),
               ("J11.1", "Influenza with other respiratory manifestations, virus not identified",
                15),
               ("J20.9", "Acute bronchitis, unspecified", 15),
               ("J02.9", "Acute pharyngitis, unspecified", 15))  # fmt: skip
GASTRO = (("A09", "Infectious gastroenteritis and colitis, unspecified", 50),
          ("A08.4", "Viral intestinal infection, unspecified", 25),
          ("K52.9", "Noninfective gastroenteritis and colitis, unspecified", 25))  # fmt: skip
OTHER = (("orthopaedics", "M54.5", "Low back pain"),
         ("orthopaedics", "M17.9", "Gonarthrosis, unspecified"),
         ("gastroenterology", "K29.7", "Gastritis, unspecified"),
         ("neurology", "R51", "Headache"),
         ("internal-medicine", "R10.4", "Other and unspecified abdominal pain"),
         ("tcm", "M54.2", "Cervicalgia"),
         ("rehabilitation", "M54.2", "Cervicalgia"))  # fmt: skip
# (ICD-10, display, department, mean length of stay in days, imaging study or None)
ADMISSIONS = {
    "pneumonia": ("J18.9", "Pneumonia, unspecified", "respiratory", 8, "ct-chest"),
    "copd": ("J44.1", "COPD with acute exacerbation, unspecified", "respiratory", 9, "xr-chest"),
    "angina": ("I20.0", "Unstable angina", "cardiology", 6, None),
    "stroke": ("I63.9", "Cerebral infarction, unspecified", "neurology", 12, "ct-head"),
    "birth": ("O80.9", "Single spontaneous delivery, unspecified", "obstetrics-gynaecology", 3,
              None),
    "gallstones": ("K80.2", "Calculus of gallbladder without cholecystitis", "surgery", 5, None),
    "hip": ("S72.0", "Fracture of neck of femur", "orthopaedics", 14, "xr-chest"),
}  # fmt: skip


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; means here are small (a few events per person)."""
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _rate(age: int, table: tuple[tuple[int, float], ...]) -> float:
    return next(rate for upper, rate in table if age <= upper)


# Yearly rates by age (upper bound of the age range, rate): assumption A14.
RESPIRATORY_RATE = ((4, 1.2), (14, 0.8), (59, 0.3), (74, 0.45), (200, 0.6))
GI_RATE = ((4, 0.3), (14, 0.15), (59, 0.1), (200, 0.12))
OTHER_RATE = ((14, 0.5), (44, 0.6), (59, 1.0), (74, 1.5), (200, 2.0))
ADMISSION_RATE = ((14, 0.02), (44, 0.03), (59, 0.05), (74, 0.10), (200, 0.18))


@dataclass
class Context:
    """What every resident's record needs to know about the district."""

    seed: int
    start: dt.date
    end: dt.date
    network: Network
    staff: StaffDirectory
    visit_multiplier: float = 1.0
    names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names = {f.key: f.name for f in self.network.facilities}

    @property
    def years(self) -> float:
        return (self.end - self.start).days / 365.25


class Record:
    """Builds one resident's resources; ids are the patient id plus a per-type counter."""

    def __init__(
        self,
        ctx: Context,
        rng: random.Random,
        person: Person,
        subdistrict: str,
        health: HealthState,
        contract: Contract | None,
    ) -> None:
        self.ctx, self.rng, self.person, self.health = ctx, rng, person, health
        self.contract = contract
        self.chc = ctx.network.chc_of(subdistrict)
        self.stations = ctx.network.stations_of(subdistrict)
        self.counters: dict[str, int] = {}

    # --- helpers --------------------------------------------------------------------------
    def _id(self, kind: str) -> str:
        n = self.counters.get(kind, 0) + 1
        self.counters[kind] = n
        return f"{self.person.id}-{kind}{n}"

    def _when(self, day: dt.date) -> dt.datetime:
        minutes = self.rng.randrange(8 * 60, 17 * 60)
        return dt.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60,
                           tzinfo=CHINA_TIME)  # fmt: skip

    def _first_day(self) -> dt.date:
        return max(self.ctx.start, self.person.birth_date)

    def _day(self, season: tuple[float, ...] | None = None) -> dt.date:
        first = self._first_day()
        span = max(1, (self.ctx.end - first).days)
        while True:
            day = first + dt.timedelta(days=self.rng.randrange(span))
            if season is None or self.rng.random() * 1.8 < season[day.month - 1]:
                return day

    def _doctor(self, facility: Facility, department: str) -> str:
        if facility.key == self.chc.key and self.contract:
            return self.contract.family_doctor
        home = self.chc if facility.tier == "station" else facility
        return self.rng.choice(self.ctx.staff.any_doctor(home.key, department))

    def _hospital(self, *, municipal_share: float = 0.25) -> Facility:
        network, contract = self.ctx.network, self.contract
        if self.rng.random() < municipal_share:
            key = (
                contract.municipal_hospital
                if contract
                else self.rng.choice(("huashan", "ruijin", "zhongshan"))
            )
        elif contract and self.rng.random() < 0.7:
            key = contract.district_hospital
        else:
            key = "tongren" if self.rng.random() < 0.7 else "guanghua"
        return network.by_key(key)

    def _community(self) -> Facility:
        """The CHC, or one of its stations for a third of the visits (assumption A14)."""
        if self.stations and self.rng.random() < 0.3:
            return self.rng.choice(self.stations)
        return self.chc

    def encounter(
        self,
        day: dt.date,
        facility: Facility,
        department: str,
        reason: tuple[str, str],
        *,
        kind: str = "AMB",
        days: int = 0,
        based_on: str | None = None,
    ) -> Json:
        start = self._when(day)
        end = start + (dt.timedelta(days=days) if days else dt.timedelta(minutes=20))
        doctor = self._doctor(facility, department)
        body: Json = {
            "resourceType": "Encounter",
            "id": self._id("enc"),
            "status": "finished",
            "class": coding(systems.HL7_ACT_CODE, kind,
                            {"AMB": "ambulatory", "IMP": "inpatient encounter"}[kind]),
            "serviceType": {"coding": [coding(systems.DEPARTMENT, department,
                                              DEPARTMENTS[department])]},
            "subject": ref("Patient", self.person.id, self.person.name),
            "participant": [{"individual": ref("Practitioner", doctor)}],
            "period": {"start": obs.instant(start)},
            "reasonCode": [concept(systems.ICD10_WHO, reason[0], reason[1])],
            "location": [{"location": ref("Location", facility.key, facility.name)}],
            "serviceProvider": ref("Organization", facility.key, facility.name),
        }  # fmt: skip
        if end.date() <= self.ctx.end:
            body["period"]["end"] = obs.instant(end)
        else:  # still in hospital on the last day of the record
            body["status"] = "in-progress"
        if based_on:
            body["basedOn"] = [ref("ServiceRequest", based_on)]
        if self.contract and facility.tier in ("community", "station"):
            body["episodeOfCare"] = [ref("EpisodeOfCare", self.contract.id)]
        return body

    # --- the record -----------------------------------------------------------------------
    def resources(self) -> Iterator[Json]:
        yield from self.conditions()
        yield from self.acute_visits()
        yield from self.follow_ups()
        yield from self.health_checks()
        yield from self.admissions()

    def conditions(self) -> Iterator[Json]:
        for key, onset in sorted(self.health.diagnosed.items()):
            condition = BY_KEY[key]
            onset = max(onset, self.person.birth_date)
            yield {
                "resourceType": "Condition",
                "id": f"{self.person.id}-{key}",
                "clinicalStatus": concept(systems.HL7_CONDITION_CLINICAL, "active"),
                "verificationStatus": concept(systems.HL7_CONDITION_VERIFICATION, "confirmed"),
                "category": [concept(systems.HL7_CONDITION_CATEGORY, "problem-list-item")],
                "code": concept(systems.ICD10_WHO, condition.icd10, condition.display),
                "subject": ref("Patient", self.person.id, self.person.name),
                "onsetDateTime": onset.isoformat(),
                "recordedDate": onset.isoformat(),
            }

    def acute_visits(self) -> Iterator[Json]:
        age, years, k = self.person.age, self.ctx.years, self.ctx.visit_multiplier
        respiratory = _rate(age, RESPIRATORY_RATE) + (0.8 if "copd" in self.health.diagnosed else 0)
        for _ in range(poisson(self.rng, respiratory * years * k)):
            day = self._day(RESPIRATORY_SEASON)
            code, display, _ = self.rng.choices(RESPIRATORY, [w for *_, w in RESPIRATORY])[0]
            if self.rng.random() < FEVER_SHARE:
                place = self.chc if self.rng.random() < 0.4 else self._hospital()
                yield self.encounter(day, place, "fever-clinic", (code, display))
            elif self.rng.random() < 0.6:
                yield self.encounter(day, self._community(), "general-practice", (code, display))
            else:
                department = "paediatrics" if age < 15 else "respiratory"
                place = self.ctx.network.by_key("mch") if age < 15 else self._hospital()
                yield self.encounter(day, place, department, (code, display))
        for _ in range(poisson(self.rng, _rate(age, GI_RATE) * years * k)):
            day = self._day(GI_SEASON)
            code, display, _ = self.rng.choices(GASTRO, [w for *_, w in GASTRO])[0]
            place = self._community() if self.rng.random() < 0.6 else self._hospital()
            department = "general-practice" if place.tier in ("community", "station") else (
                "gastroenterology" if "gastroenterology" in place.departments else
                "internal-medicine")  # fmt: skip
            yield self.encounter(day, place, department, (code, display))
        for _ in range(poisson(self.rng, _rate(age, OTHER_RATE) * years * k)):
            department, code, display = self.rng.choice(OTHER)
            if self.rng.random() < 0.6:
                yield self.encounter(
                    self._day(), self._community(), "general-practice", (code, display)
                )
                continue
            place = self._hospital()
            if department not in place.departments:
                department = "internal-medicine"
            yield self.encounter(self._day(), place, department, (code, display))

    def follow_ups(self) -> Iterator[Json]:
        """Quarterly CHC follow-ups of diagnosed hypertension/diabetes, with urgent referrals."""
        managed = [k for k in ("hypertension", "diabetes") if k in self.health.diagnosed]
        if not managed:
            return
        first = max(self._first_day(), *(self.health.diagnosed[k] for k in managed))
        quarter = dt.timedelta(days=91)
        day = first + dt.timedelta(days=self.rng.randrange(91))
        reason_key = managed[0]
        reason = (BY_KEY[reason_key].icd10, BY_KEY[reason_key].display)
        visit = 0
        while day <= self.ctx.end:
            visit += 1
            encounter = self.encounter(day, self.chc, "general-practice", reason)
            yield encounter
            when = self._when(day)
            sbp, dbp = self._bp()
            yield obs.blood_pressure(self._id("obs"), self.person.id, encounter["id"], when,
                                     sbp, dbp)  # fmt: skip
            if "diabetes" in managed:
                glucose = self.health.glucose + self.rng.gauss(0, 0.7)
                yield obs.measurement(self._id("obs"), self.person.id, encounter["id"], when,
                                      "glucose", glucose)  # fmt: skip
                if visit % FOLLOW_UPS_PER_YEAR == 0:
                    hba1c = self.health.hba1c + self.rng.gauss(0, 0.3)
                    yield obs.measurement(self._id("obs"), self.person.id, encounter["id"],
                                          when, "hba1c", hba1c)  # fmt: skip
            if sbp >= URGENT_SBP or dbp >= URGENT_DBP:
                yield from self.referral(day, "up", ("I10", BY_KEY["hypertension"].display),
                                         urgent=True)  # fmt: skip
            day += quarter + dt.timedelta(days=self.rng.randrange(-10, 11))

    def _bp(self) -> tuple[int, int]:
        return (round(self.health.sbp + self.rng.gauss(0, 9)),
                round(self.health.dbp + self.rng.gauss(0, 6)))  # fmt: skip

    def health_checks(self) -> Iterator[Json]:
        """Yearly check of residents 65+ (china-rules.md §4.3): vitals, smoking, labs, report."""
        if self.person.age < 65:
            return
        day = self.ctx.start + dt.timedelta(days=self.rng.randrange(365))
        while day <= self.ctx.end:
            encounter = self.encounter(day, self.chc, "general-practice",
                                       ("Z00.0", "General medical examination"))  # fmt: skip
            yield encounter
            eid, pid, when = encounter["id"], self.person.id, self._when(day)
            sbp, dbp = self._bp()
            bmi = self.health.bmi + self.rng.gauss(0, 0.4)
            waist = waist_cm(self.person.sex, bmi) + self.rng.gauss(0, 2)
            yield obs.blood_pressure(self._id("obs"), pid, eid, when, sbp, dbp)
            yield obs.measurement(self._id("obs"), pid, eid, when, "bmi", bmi)
            yield obs.measurement(self._id("obs"), pid, eid, when, "waist", waist)
            yield obs.smoking_status(self._id("obs"), pid, eid, when, self.health.smoking)
            labs = {
                "glucose": self.health.glucose + self.rng.gauss(0, 0.5),
                "tc": self.health.tc + self.rng.gauss(0, 0.3),
                "hdl": max(0.5, self.health.hdl + self.rng.gauss(0, 0.1)),
            }
            ids = []
            for name, value in labs.items():
                ids.append(self._id("obs"))
                yield obs.measurement(ids[-1], pid, eid, when, name, value)
            yield obs.report(self._id("dr"), pid, eid, when,
                             code=("24331-1", "Lipid 1996 panel - Serum or Plasma"), section="LAB",
                             performer=(self.chc.key, self.chc.name), results=ids[1:])  # fmt: skip
            day += dt.timedelta(days=365)

    def admissions(self) -> Iterator[Json]:
        age, diagnosed = self.person.age, self.health.diagnosed
        rate = _rate(age, ADMISSION_RATE) + (
            0.15 if any(k in diagnosed for k in ("chd", "stroke", "copd")) else 0
        )
        for _ in range(poisson(self.rng, rate * self.ctx.years * self.ctx.visit_multiplier)):
            weights = {
                "pneumonia": 3 * (2 if age >= 65 else 1),
                "copd": 4 if "copd" in diagnosed else 0,
                "angina": 4 if "chd" in diagnosed else (0.5 if age >= 55 else 0),
                "stroke": 3 if "stroke" in diagnosed else (0.4 if age >= 55 else 0),
                "birth": 6 if self.person.sex == "female" and 20 <= age <= 42 else 0,
                "gallstones": 1 if age >= 18 else 0,
                "hip": 1 if age >= 75 else 0,
            }
            kind = self.rng.choices(list(weights), list(weights.values()))[0]
            yield from self.admission(kind)

    def admission(self, kind: str) -> Iterator[Json]:
        code, display, department, stay, study = ADMISSIONS[kind]
        season = RESPIRATORY_SEASON if kind in ("pneumonia", "copd") else None
        day = self._day(season)
        place = (
            self.ctx.network.by_key("mch")
            if kind == "birth"
            else self._hospital(municipal_share=0.3 if kind in ("angina", "stroke") else 0.2)
        )
        if department not in place.departments:
            department = "internal-medicine"  # fmt: skip
        based_on = None
        if self.contract and kind not in ("stroke", "hip", "birth") and self.rng.random() < 0.6:
            # A planned admission of a contracted resident comes through the family doctor.
            referral = list(self.referral(day - dt.timedelta(days=self.rng.randint(1, 5)), "up",
                                          (code, display), target=place))  # fmt: skip
            based_on = referral[0]["id"]
            yield from referral
        length = max(1, round(self.rng.gauss(stay, stay / 3)))
        encounter = self.encounter(day, place, department, (code, display), kind="IMP",
                                   days=length, based_on=based_on)  # fmt: skip
        yield encounter
        if study:
            name = obs.IMAGING_STUDIES[study]
            finding = {"pneumonia": "右下肺斑片状影，考虑肺炎", "copd": "双肺纹理增多，肺气肿改变",
                       "stroke": "左侧基底节区低密度灶，考虑急性脑梗死",
                       "hip": "心肺未见明显异常"}[kind]  # fmt: skip
            yield obs.report(self._id("dr"), self.person.id, encounter["id"],
                             self._when(day), code=name, section="RAD",
                             performer=(place.key, place.name), conclusion=finding)  # fmt: skip
        discharge = day + dt.timedelta(days=length)
        if self.contract and kind in ("stroke", "angina", "hip") and discharge <= self.ctx.end:
            # Down-referral for recovery at the CHC (two-way referral, MISSION.md).
            yield from self.referral(discharge, "down", (code, display), source=place)

    def referral(
        self,
        day: dt.date,
        direction: str,
        reason: tuple[str, str],
        *,
        urgent: bool = False,
        target: Facility | None = None,
        source: Facility | None = None,
    ) -> Iterator[Json]:
        """A referral ServiceRequest and its Task; recent ones are still open."""
        if direction == "up":
            requester = ("Practitioner", self.contract.family_doctor if self.contract
                         else self._doctor(self.chc, "general-practice"))  # fmt: skip
            target = target or self._hospital(municipal_share=0.1)
        else:
            assert source is not None
            requester = ("Practitioner", self.rng.choice(
                self.ctx.staff.any_doctor(source.key, "internal-medicine")))  # fmt: skip
            target = self.chc
        sid = self._id("ref")
        authored = self._when(day)
        age = (self.ctx.end - day).days
        done = age > REFERRAL_FOLLOW_UP_DAYS
        request = {
            "resourceType": "ServiceRequest",
            "id": sid,
            "status": "completed" if done else "active",
            "intent": "order",
            "category": [concept(systems.SNOMED_CT, *REFERRAL_CATEGORY)],
            "priority": "urgent" if urgent else "routine",
            "code": {"text": "上转" if direction == "up" else "下转"},
            "subject": ref("Patient", self.person.id, self.person.name),
            "authoredOn": obs.instant(authored),
            "requester": ref(*requester),
            "performer": [ref("Organization", target.key, target.name)],
            "reasonCode": [concept(systems.ICD10_WHO, reason[0], reason[1])],
        }
        status = "completed" if done else self.rng.choice(("requested", "accepted"))
        task = {
            "resourceType": "Task",
            "id": f"{sid}-task",
            "status": status,
            "intent": "order",
            "priority": request["priority"],
            "code": concept(systems.HL7_TASK_CODE, "fulfill", "Fulfill the focal request"),
            "focus": ref("ServiceRequest", sid),
            "for": ref("Patient", self.person.id, self.person.name),
            "authoredOn": obs.instant(authored),
            "lastModified": obs.instant(authored + dt.timedelta(days=min(age, 3))),
            "requester": ref(*requester),
            "owner": ref("Organization", target.key, target.name),
        }
        yield request
        yield task
