"""What each role's home page shows today: counts from ``figures``, records through ``reads``.

One function per role returns the template name and its context. Aggregate counts come from
``yilian.web.figures`` (no personal data); anything naming a person is read through the FHIR
service as the user (``yilian.web.reads.as_user``: policy-checked and audited).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from yilian.auth import Principal, Role
from yilian.fhir import systems
from yilian.fhir.service import FhirService
from yilian.web import figures
from yilian.web.i18n import Translate
from yilian.web.reads import as_user, resources_of, runtime_of
from yilian.web.record import (
    age_on,
    build_record,
    china_day,
    concept_text,
    display_name,
    first_code,
)

PAGE_SIZE = 20
LIST_SIZE = 20


@dataclass(frozen=True)
class Page:
    template: str
    context: dict[str, Any]


def china_today() -> dt.date:
    return dt.datetime.now(figures.CHINA_TIME).date()


def home_page(
    request: Request, principal: Principal, *, page: int, today: dt.date, t: Translate
) -> Page:
    builders = {
        Role.MANAGER: _manager,
        Role.ADMIN: _manager,
        Role.FAMILY_DOCTOR: _family_doctor,
        Role.SPECIALIST: _specialist,
        Role.CDC: _cdc,
        Role.FACILITY_ADMIN: _facility_admin,
        Role.RESIDENT: _resident,
        Role.STEWARD: _steward,
    }
    built = builders[principal.role](request, principal, page, today)
    if "chart" in built.context:
        built.context["chart"] = _labelled(built.context["chart"], t)
    return built


def _labelled(chart: dict[str, Any], t: Translate) -> dict[str, Any]:
    """Chart categories and series named in the page's language (keys ``chart.<name>``)."""
    prefix = chart.get("category_prefix", "")
    return {
        "kind": chart["kind"],
        "categories": [t(prefix + c) if prefix else c for c in chart["categories"]],
        "series": {t("chart." + name): values for name, values in chart["series"].items()},
    }


def _aggregates(request: Request) -> Session:
    return runtime_of(request).sessions()


# --------------------------------------------------------------------------- manager


def _manager(request: Request, principal: Principal, page: int, today: dt.date) -> Page:
    with _aggregates(request) as session:
        district = figures.district_figures(session, today)
    chart = {
        "kind": "bar",
        "category_prefix": "tier.",
        "categories": list(district.visits_by_tier),
        "series": {"visits": list(district.visits_by_tier.values())},
    }
    return Page("home_manager.html", {"district": district, "chart": chart})


# --------------------------------------------------------------------------- steward


def _steward(request: Request, principal: Principal, page: int, today: dt.date) -> Page:
    """The data steward's home is the review queue, most likely pairs first."""
    from yilian.mpi.review.web import queue_context

    with _aggregates(request) as session:
        return Page("mpi_review_queue.html", queue_context(session, order="probability", page=page))


# ------------------------------------------------------------------------------- CDC


def _cdc(request: Request, principal: Principal, page: int, today: dt.date) -> Page:
    with _aggregates(request) as session:
        weekly = figures.syndrome_weeks(session, today)
    chart = {
        "kind": "line",
        "categories": [w.isoformat() for w in weekly.weeks],
        "series": weekly.series,
    }
    totals = {name: sum(values) for name, values in weekly.series.items()}
    return Page("home_cdc.html", {"weekly": weekly, "chart": chart, "totals": totals})


# --------------------------------------------------------------------- family doctor


def _family_doctor(request: Request, principal: Principal, page: int, today: dt.date) -> Page:
    practitioner = principal.practitioner_id or ""
    with _aggregates(request) as session:
        total, ids = figures.panel_page(session, practitioner, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        visits = figures.last_visits(session, ids)
    rows: list[dict[str, Any]] = []
    if ids:
        with as_user(request, principal) as service:
            rows = _panel_rows(service, ids, visits, today)
    pages = max(1, -(-total // PAGE_SIZE))
    return Page(
        "home_family_doctor.html",
        {"total": total, "rows": rows, "page": page, "pages": pages},
    )


def _panel_rows(
    service: FhirService, ids: list[str], visits: dict[str, dt.datetime], today: dt.date
) -> list[dict[str, Any]]:
    bundle = service.search(
        "Patient",
        [("_id", ",".join(ids)), ("_revinclude", "Condition:subject"), ("_count", str(len(ids)))],
    )
    conditions: dict[str, list[str]] = {}
    for condition in resources_of(bundle, "Condition"):
        subject = str((condition.get("subject") or {}).get("reference", "")).split("/")[-1]
        conditions.setdefault(subject, []).append(first_code(condition.get("code")))
    patients = {p["id"]: p for p in resources_of(bundle, "Patient")}
    rows = []
    for pid in ids:
        patient = patients.get(pid)
        if patient is None:
            continue
        last = visits.get(pid)
        rows.append(
            {
                "id": pid,
                "name": display_name(patient),
                "gender": patient.get("gender", "unknown"),
                "age": age_on(patient.get("birthDate"), today),
                "conditions": sorted(conditions.get(pid, [])),
                "last_visit": figures.china_date(last) if last else "",
            }
        )
    return rows


# ------------------------------------------------------------------- specialist desk


def _specialist(request: Request, principal: Principal, page: int, today: dt.date) -> Page:
    org = principal.organization_id or ""
    with _aggregates(request) as session:
        counts = figures.organization_figures(session, org, today)
        orgs = figures.facility_and_departments(session, org)
    targets = ",".join(f"Organization/{o}" for o in orgs)
    with as_user(request, principal) as service:
        referrals = service.search(
            "ServiceRequest",
            [
                ("performer", targets),
                ("_sort", "-authored"),
                ("_count", str(LIST_SIZE)),
                ("_include", "ServiceRequest:subject"),
            ],
        )
        encounters = service.search(
            "Encounter",
            [
                ("service-provider", targets),
                ("_sort", "-date"),
                ("_count", str(LIST_SIZE)),
                ("_include", "Encounter:subject"),
            ],
        )
    return Page(
        "home_specialist.html",
        {
            "counts": counts,
            "organization": org,
            "referrals": _referral_rows(referrals, today),
            "encounters": _encounter_rows(encounters, today),
        },
    )


def _subjects(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"Patient/{p['id']}": p for p in resources_of(bundle, "Patient")}


def _person(patients: dict[str, dict[str, Any]], ref: Any, today: dt.date) -> dict[str, Any]:
    key = str((ref or {}).get("reference", ""))
    patient = patients.get(key, {})
    return {
        "id": key.split("/")[-1],
        "name": display_name(patient) if patient else str((ref or {}).get("display", "")),
        "age": age_on(patient.get("birthDate"), today),
        "gender": patient.get("gender", "unknown"),
    }


def _referral_rows(bundle: dict[str, Any], today: dt.date) -> list[dict[str, Any]]:
    patients = _subjects(bundle)
    return [
        {
            "patient": _person(patients, r.get("subject"), today),
            "day": china_day(r.get("authoredOn")),
            "direction": concept_text(r.get("code")),
            "priority": r.get("priority", "routine"),
            "status": r.get("status", ""),
            "reason": concept_text(next(iter(r.get("reasonCode") or []), {})),
        }
        for r in resources_of(bundle, "ServiceRequest")
        if _is_match(bundle, r)
    ]


def _encounter_rows(bundle: dict[str, Any], today: dt.date) -> list[dict[str, Any]]:
    patients = _subjects(bundle)
    return [
        {
            "patient": _person(patients, e.get("subject"), today),
            "day": china_day((e.get("period") or {}).get("start")),
            "class": (e.get("class") or {}).get("code", ""),
            "department": first_code(e.get("serviceType"), systems.DEPARTMENT),
            "reason": concept_text(next(iter(e.get("reasonCode") or []), {})),
        }
        for e in resources_of(bundle, "Encounter")
        if _is_match(bundle, e)
    ]


def _is_match(bundle: dict[str, Any], resource: dict[str, Any]) -> bool:
    for entry in bundle.get("entry", []):
        if entry.get("resource") is resource:
            return bool(entry.get("search", {}).get("mode", "match") == "match")
    return False


# ------------------------------------------------------------------- facility admin


def _facility_admin(request: Request, principal: Principal, page: int, today: dt.date) -> Page:
    org = principal.organization_id or ""
    with _aggregates(request) as session:
        counts = figures.organization_figures(session, org, today)
        staff = figures.practitioners_by_role(session, org)
    with as_user(request, principal) as service:
        found = service.search("Organization", [("_id", org)])
        departments = service.search(
            "Organization", [("partof", f"Organization/{org}"), ("_count", "100")]
        )
        locations = service.search("Location", [("organization", f"Organization/{org}")])
    facility = next(iter(resources_of(found, "Organization")), {})
    return Page(
        "home_facility_admin.html",
        {
            "facility": display_name(facility) if facility else org,
            "counts": counts,
            "staff": staff,
            "departments": sorted(
                code
                for d in resources_of(departments, "Organization")
                for t in d.get("type") or []
                if (code := first_code(t, systems.DEPARTMENT))
            ),
            "capacity": [capacity_of(loc) for loc in resources_of(locations, "Location")],
        },
    )


def capacity_of(location: dict[str, Any]) -> dict[str, Any]:
    """beds / icuBeds / convertibleIcuBeds / feverClinic from ``EXT_FACILITY_CAPACITY``."""
    values: dict[str, Any] = {
        "name": display_name(location),
        "beds": None,
        "icuBeds": None,
        "convertibleIcuBeds": None,
        "feverClinic": None,
    }
    for extension in location.get("extension") or []:
        if extension.get("url") != systems.EXT_FACILITY_CAPACITY:
            continue
        for part in extension.get("extension") or []:
            value = next((v for k, v in part.items() if k.startswith("value")), None)
            values[str(part.get("url"))] = value
    return values


# -------------------------------------------------------------------------- resident


def _resident(request: Request, principal: Principal, page: int, today: dt.date) -> Page:
    patient_id = principal.patient_id or ""
    with as_user(request, principal) as service:
        bundle = service.everything(patient_id)
    resources = resources_of(bundle)
    patient = next(r for r in resources if r.get("resourceType") == "Patient")
    record = build_record(patient, resources, today)
    return Page("home_resident.html", {"record": record, "recent": record.encounters[:5]})
