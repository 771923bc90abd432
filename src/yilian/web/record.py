"""One resident's lifelong record shaped for the record page and the resident's home page.

Input: the resources of ``Patient/{id}/$everything`` (read, audited, by ``yilian.web.reads``).
Output: plain data for the templates — header, contract, conditions, an encounter timeline,
measurement series for the trend charts and the diagnostic reports. Measurements are found by
the LOINC codes the district writes (docs/synth.md "Conventions").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from yilian.fhir import systems
from yilian.web.figures import CHINA_TIME

Json = dict[str, Any]


@dataclass(frozen=True)
class Measure:
    """A measurement the record page charts: ``key`` names it in the message catalogue."""

    key: str
    code: str  # LOINC code of the Observation, or of the component when ``panel`` is set
    unit: str
    panel: str | None = None  # LOINC code of the panel holding it as a component


# LOINC codes as the district writes them (docs/synth.md "Conventions": measurements).
MEASURES = (
    Measure("sbp", "8480-6", "mmHg", panel="85354-9"),
    Measure("dbp", "8462-4", "mmHg", panel="85354-9"),
    Measure("glucose", "14771-0", "mmol/L"),
    Measure("hba1c", "4548-4", "%"),
    Measure("tc", "14647-2", "mmol/L"),
    Measure("hdl", "14646-4", "mmol/L"),
    Measure("bmi", "39156-5", "kg/m2"),
    Measure("waist", "8280-0", "cm"),
)
# Which measures share one chart (key of the chart → measures in it).
CHARTS = {
    "bp": ("sbp", "dbp"),
    "glucose": ("glucose", "hba1c"),
    "lipids": ("tc", "hdl"),
    "bmi": ("bmi", "waist"),
}


def parse_moment(text: str | None) -> dt.datetime | None:
    """An R4 date/dateTime/instant as an aware datetime (a date means its China-time midnight)."""
    if not text:
        return None
    try:
        if len(text) <= 10:
            parts = [int(p) for p in text.split("-")] + [1, 1]
            return dt.datetime(parts[0], parts[1], parts[2], tzinfo=CHINA_TIME)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def china_day(text: str | None) -> str:
    moment = parse_moment(text)
    return moment.astimezone(CHINA_TIME).date().isoformat() if moment else ""


def age_on(birth: str | None, today: dt.date) -> int | None:
    moment = parse_moment(birth)
    if moment is None:
        return None
    born = moment.date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def display_name(resource: Json) -> str:
    names = resource.get("name")
    if isinstance(names, str):
        return names
    for name in names or []:
        if name.get("text"):
            return str(name["text"])
        joined = (name.get("family") or "") + "".join(name.get("given") or [])
        if joined:
            return joined
    return str(resource.get("id", ""))


def concept_text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if coding.get("display"):
            return str(coding["display"])
        if coding.get("code"):
            return str(coding["code"])
    return ""


def first_code(concept: Any, system: str | None = None) -> str:
    for coding in (concept or {}).get("coding") or []:
        if system is None or coding.get("system") == system:
            return str(coding.get("code", ""))
    return ""


def masked_id(value: str) -> str:
    """A resident ID number shown with the middle hidden (region and check digits stay)."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else value


@dataclass
class Point:
    day: str
    value: float


@dataclass
class Record:
    """What the record page shows."""

    patient_id: str
    name: str
    gender: str
    birth_date: str
    age: int | None
    resident_id: str
    phone: str
    address: str
    contract: Json | None = None
    conditions: list[Json] = field(default_factory=list)
    encounters: list[Json] = field(default_factory=list)
    reports: list[Json] = field(default_factory=list)
    referrals: list[Json] = field(default_factory=list)
    series: dict[str, list[Point]] = field(default_factory=dict)

    def latest(self) -> list[tuple[Measure, Point]]:
        return [(m, self.series[m.key][-1]) for m in MEASURES if self.series.get(m.key)]

    def chart_data(self) -> dict[str, Any]:
        """Per chart: the measure keys and their [day, value] points (for charts.js)."""
        charts: dict[str, Any] = {}
        for chart, keys in CHARTS.items():
            lines = {k: [[p.day, p.value] for p in self.series.get(k, [])] for k in keys}
            if any(lines.values()):
                charts[chart] = lines
        return charts


class _Names:
    """Display names of referenced resources, from the record's included resources."""

    def __init__(self, resources: list[Json]) -> None:
        self.names = {
            f"{r['resourceType']}/{r['id']}": display_name(r)
            for r in resources
            if r.get("resourceType") in ("Organization", "Practitioner", "Location")
        }

    def of(self, reference: Any) -> str:
        if not isinstance(reference, dict):
            return ""
        return str(reference.get("display") or self.names.get(str(reference.get("reference")), ""))


def build_record(patient: Json, resources: list[Json], today: dt.date) -> Record:
    names = _Names(resources)
    by_type: dict[str, list[Json]] = {}
    for resource in resources:
        by_type.setdefault(str(resource.get("resourceType")), []).append(resource)
    identifiers = patient.get("identifier") or []
    resident: Json = next((i for i in identifiers if i.get("system") == systems.RESIDENT_ID), {})
    phone: Json = next((t for t in patient.get("telecom") or [] if t.get("system") == "phone"), {})
    address: Json = next(iter(patient.get("address") or []), {})
    record = Record(
        patient_id=str(patient["id"]),
        name=display_name(patient),
        gender=str(patient.get("gender", "unknown")),
        birth_date=str(patient.get("birthDate", "")),
        age=age_on(patient.get("birthDate"), today),
        resident_id=masked_id(str(resident.get("value", ""))),
        phone=str(phone.get("value", "")),
        address=str(address.get("text", "")),
    )
    record.contract = _contract(by_type, names)
    record.conditions = _conditions(by_type.get("Condition", []))
    record.encounters = _encounters(by_type.get("Encounter", []), names)
    record.series = _series(by_type.get("Observation", []))
    record.reports = _reports(by_type.get("DiagnosticReport", []), by_type, names)
    record.referrals = _referrals(by_type.get("ServiceRequest", []), names)
    return record


def _contract(by_type: dict[str, list[Json]], names: _Names) -> Json | None:
    episodes = [e for e in by_type.get("EpisodeOfCare", []) if e.get("status") == "active"]
    if not episodes:
        return None
    episode = episodes[0]
    first_team: Json = next(iter(episode.get("team") or []), {})
    team_id = first_team.get("reference", "")
    team = next(
        (t for t in by_type.get("CareTeam", []) if f"CareTeam/{t.get('id')}" == team_id), {}
    )
    members = {}
    for participant in team.get("participant") or []:
        role = first_code(next(iter(participant.get("role") or []), {}))
        members[role] = names.of(participant.get("member"))
    return {
        "start": china_day((episode.get("period") or {}).get("start")),
        "doctor": names.of(episode.get("careManager")),
        "chc": names.of(episode.get("managingOrganization")),
        "district_hospital": members.get("district-hospital", ""),
        "municipal_hospital": members.get("municipal-hospital", ""),
    }


def _conditions(conditions: list[Json]) -> list[Json]:
    rows = [
        {
            "code": first_code(c.get("code")),
            "text": concept_text(c.get("code")),
            "onset": china_day(c.get("onsetDateTime") or c.get("recordedDate")),
            "status": first_code(c.get("clinicalStatus")),
        }
        for c in conditions
    ]
    return sorted(rows, key=lambda r: r["onset"])


def _encounters(encounters: list[Json], names: _Names) -> list[Json]:
    rows = []
    for e in encounters:
        start = (e.get("period") or {}).get("start")
        rows.append(
            {
                "id": e.get("id"),
                "start": start or "",
                "day": china_day(start),
                "class": (e.get("class") or {}).get("code", ""),
                "department": concept_text(e.get("serviceType")),
                "facility": names.of(e.get("serviceProvider")),
                "reason": concept_text(next(iter(e.get("reasonCode") or []), {})),
                "status": e.get("status", ""),
            }
        )
    return sorted(rows, key=lambda r: parse_moment(r["start"]) or _EPOCH, reverse=True)


_EPOCH = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)


def _values(observation: Json) -> dict[str, float]:
    """LOINC code → numeric value of the observation and of its components."""
    found: dict[str, float] = {}
    code = first_code(observation.get("code"), systems.LOINC)
    quantity = observation.get("valueQuantity") or {}
    if code and isinstance(quantity.get("value"), int | float):
        found[code] = float(quantity["value"])
    for component in observation.get("component") or []:
        value = (component.get("valueQuantity") or {}).get("value")
        component_code = first_code(component.get("code"), systems.LOINC)
        if component_code and isinstance(value, int | float):
            found[f"{code}/{component_code}"] = float(value)
    return found


def _series(observations: list[Json]) -> dict[str, list[Point]]:
    series: dict[str, list[tuple[dt.datetime, Point]]] = {m.key: [] for m in MEASURES}
    for observation in observations:
        text = observation.get("effectiveDateTime")
        moment = parse_moment(text)
        if moment is None:
            continue
        values = _values(observation)
        for measure in MEASURES:
            key = f"{measure.panel}/{measure.code}" if measure.panel else measure.code
            if key in values:
                series[measure.key].append((moment, Point(china_day(text), values[key])))
    return {k: [p for _, p in sorted(v, key=lambda x: x[0])] for k, v in series.items() if v}


def _reports(reports: list[Json], by_type: dict[str, list[Json]], names: _Names) -> list[Json]:
    observations = {f"Observation/{o.get('id')}": o for o in by_type.get("Observation", [])}
    rows = []
    for report in reports:
        results = []
        for ref in report.get("result") or []:
            observation = observations.get(str(ref.get("reference")))
            if observation is None:
                continue
            quantity = observation.get("valueQuantity") or {}
            results.append(
                {
                    "name": concept_text(observation.get("code")),
                    "value": quantity.get("value", ""),
                    "unit": quantity.get("unit", ""),
                }
            )
        when = report.get("effectiveDateTime") or report.get("issued")
        rows.append(
            {
                "day": china_day(when),
                "moment": parse_moment(when) or _EPOCH,
                "name": concept_text(report.get("code")),
                "category": first_code(next(iter(report.get("category") or []), {})),
                "conclusion": report.get("conclusion", ""),
                "performer": names.of(next(iter(report.get("performer") or []), {})),
                "results": results,
            }
        )
    return sorted(rows, key=lambda r: r["moment"], reverse=True)


def _referrals(requests: list[Json], names: _Names) -> list[Json]:
    rows = [
        {
            "day": china_day(r.get("authoredOn")),
            "direction": concept_text(r.get("code")),
            "to": names.of(next(iter(r.get("performer") or []), {})),
            "status": r.get("status", ""),
            "priority": r.get("priority", "routine"),
            "reason": concept_text(next(iter(r.get("reasonCode") or []), {})),
        }
        for r in requests
    ]
    return sorted(rows, key=lambda r: r["day"], reverse=True)
