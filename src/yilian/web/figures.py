"""The numbers on the home pages, counted in SQL over the store's search-index tables.

Why SQL and not FHIR searches: a home page shows dozens of counts (26 weeks x 3 syndromes for
the CDC chart alone); each here is one indexed ``GROUP BY`` instead of one search per number,
and stays fast at 100k residents (every query starts from an index of ``yilian.fhir.models``,
``ix_idx_*_lookup``). These functions return **counts and ids only**, never resource content:
the personal data a page shows is read through ``FhirService`` (audited, policy-checked) in
``yilian.web.reads``. Aggregates name no one, so they are not personal-data accesses.

The conventions counted are the synthetic district's (docs/synth.md "Conventions"): tier in
``Organization.type`` (``ORGANIZATION_TIER``), contracts as ``EpisodeOfCare`` of type
``FAMILY_DOCTOR_CONTRACT#contract``, fever clinics as ``Encounter.serviceType`` =
``DEPARTMENT#fever-clinic``, visit reasons in ``Encounter.reasonCode`` (ICD-10).
"""

# arch: store-access — aggregate counts and ids over the index tables; no resource content is
# read here (that goes through FhirService, audited).

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, distinct, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from yilian.fhir import systems
from yilian.fhir.models import DateIndex, ReferenceIndex, ResourceRow, TokenIndex

# Dates in the record are China Standard Time; days and weeks on the pages are CST days.
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))
ELDERLY_AGE = 65  # the 65+ key population of the contract plan (docs/synth.md A13)
RECENT_DAYS = 30
TIER_ORDER = ("municipal", "district-regional", "community", "station", "public-health")
OTHER_TIER = "other"  # an organisation without a known tier (e.g. data from outside the district)

# Syndrome groups by WHO ICD-10 (2019) blocks of the visit reason, as half-open code ranges
# compared as text ("J06.9" lies in ["J00", "J23")). Source: WHO ICD-10 Version 2019,
# https://icd.who.int/browse10/2019/en — J00-J06 "Acute upper respiratory infections", J09-J18
# "Influenza and pneumonia", J20-J22 "Other acute lower respiratory infections"; A00-A09
# "Intestinal infectious diseases" and K52 "Other noninfective gastroenteritis and colitis".
SYNDROME_RANGES: dict[str, tuple[tuple[str, str], ...]] = {
    "respiratory": (("J00", "J23"),),
    "gastrointestinal": (("A00", "A10"), ("K52", "K53")),
}
ICD10_SYSTEMS = (systems.ICD10_WHO, systems.ICD10_CN)
FEVER_CLINIC = "fever-clinic"  # DEPARTMENT code of the fever clinic (docs/synth.md)


def utc_naive(moment: dt.datetime) -> dt.datetime:
    """The index tables hold naive UTC."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def day_start(day: dt.date) -> dt.datetime:
    """00:00 China time of ``day``, as the index stores it."""
    return utc_naive(dt.datetime(day.year, day.month, day.day, tzinfo=CHINA_TIME))


def china_date(moment: dt.datetime) -> str:
    """The China-time calendar day of a naive-UTC index value."""
    return moment.replace(tzinfo=dt.UTC).astimezone(CHINA_TIME).date().isoformat()


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` earlier (29 February falls back to the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


# ------------------------------------------------------------------------ building blocks


def _token(alias: Any, res_type: str, param: str, code: str, system: str | None = None) -> Any:
    clauses = [alias.res_type == res_type, alias.param == param, alias.code == code]
    if system is not None:
        clauses.append(alias.system == system)
    return and_(*clauses)


def _active_contracts() -> Any:
    """``SELECT resource_pk`` of active family-doctor contracts (EpisodeOfCare)."""
    status, kind = aliased(TokenIndex), aliased(TokenIndex)
    return (
        select(status.resource_pk)
        .join(kind, kind.resource_pk == status.resource_pk)
        .where(_token(status, "EpisodeOfCare", "status", "active"))
        .where(_token(kind, "EpisodeOfCare", "type", "contract", systems.FAMILY_DOCTOR_CONTRACT))
    )


def _contracted(session: Session, cutoff: dt.date) -> tuple[int, int, int]:
    """(active contracts, distinct contracted patients, of whom born on or before ``cutoff``)
    in one pass: the contracts' patient references joined to the patients' birth dates."""
    patient, row, born = aliased(ReferenceIndex), aliased(ResourceRow), aliased(DateIndex)
    limit = dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time())
    found = session.execute(
        select(
            func.count(distinct(patient.resource_pk)),
            func.count(distinct(patient.target_id)),
            func.count(distinct(case((born.low < limit, patient.target_id), else_=None))),
        )
        .select_from(patient)
        .outerjoin(row, and_(row.res_type == "Patient", row.res_id == patient.target_id))
        .outerjoin(
            born,
            and_(born.resource_pk == row.pk, born.res_type == "Patient", born.param == "birthdate"),
        )
        .where(
            patient.res_type == "EpisodeOfCare",
            patient.param == "patient",
            _probe_only(session, patient.target_type) == "Patient",
            patient.resource_pk.in_(_active_contracts()),
        )
    ).one()
    return int(found[0]), int(found[1]), int(found[2])


def _born_on_or_before(cutoff: dt.date) -> Any:
    """pks of Patients born on or before ``cutoff`` (a birth date covers its whole day)."""
    return select(DateIndex.resource_pk).where(
        DateIndex.res_type == "Patient",
        DateIndex.param == "birthdate",
        DateIndex.low < dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time()),
    )


def _probe_only(session: Session, column: Any) -> Any:
    """On SQLite, the column behind an expression, so no index serves this term: the planner
    then reaches the table through the join key (its owner index) from the selective side (a
    date range, a doctor's contracts) instead of scanning every row of the parameter. SQLite has
    no statistics until ANALYZE and otherwise starts from the parameter's lookup index. The
    same device as SQLite's unary ``+`` (https://sqlite.org/optoverview.html, "Disqualifying
    WHERE Clause Terms Using Unary-+"). PostgreSQL plans from statistics and keeps the column."""
    if session.get_bind().dialect.name == "sqlite":
        return column.concat("")
    return column


def _count(session: Session, query: Any) -> int:
    return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())


# ---------------------------------------------------------------------------- manager


@dataclass(frozen=True)
class Coverage:
    residents: int
    contracted: int

    @property
    def share(self) -> float | None:
        return self.contracted / self.residents if self.residents else None


@dataclass(frozen=True)
class DistrictFigures:
    """The health-commission manager's home page."""

    today: dt.date
    residents: int
    active_contracts: int
    coverage: Coverage
    coverage_65: Coverage
    facilities_by_tier: dict[str, int]
    visits_by_tier: dict[str, int]  # last RECENT_DAYS days including today


def resident_count(session: Session) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(ResourceRow)
            .where(ResourceRow.res_type == "Patient", ResourceRow.deleted.is_(False))
        ).scalar_one()
    )


def tier_of_organizations(session: Session) -> dict[str, str]:
    """Organization id → care-network tier code (facilities only; departments have none)."""
    rows = session.execute(
        select(ResourceRow.res_id, TokenIndex.code)
        .join(TokenIndex, TokenIndex.resource_pk == ResourceRow.pk)
        .where(
            TokenIndex.res_type == "Organization",
            TokenIndex.param == "type",
            TokenIndex.system == systems.ORGANIZATION_TIER,
        )
    ).all()
    return {str(res_id): str(code) for res_id, code in rows}


def _known(tier: str) -> str:
    return tier if tier in TIER_ORDER else OTHER_TIER


def _ordered_tiers(counts: dict[str, int]) -> dict[str, int]:
    """Every known tier (zeros included), then ``other`` when some provider had no known tier."""
    ordered = {tier: counts.get(tier, 0) for tier in TIER_ORDER}
    if counts.get(OTHER_TIER):
        ordered[OTHER_TIER] = counts[OTHER_TIER]
    return ordered


def visits_by_provider(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Encounters starting in [start, end) (naive UTC) by serviceProvider Organization id."""
    provider = aliased(ReferenceIndex)
    rows = session.execute(
        select(provider.target_id, func.count(distinct(DateIndex.resource_pk)))
        .join(provider, provider.resource_pk == DateIndex.resource_pk)
        .where(
            DateIndex.res_type == "Encounter",
            DateIndex.param == "date",
            DateIndex.low >= start,
            DateIndex.low < end,
            _probe_only(session, provider.res_type) == "Encounter",
            _probe_only(session, provider.param) == "service-provider",
            _probe_only(session, provider.target_type) == "Organization",
        )
        .group_by(provider.target_id)
    ).all()
    return {str(org): int(n) for org, n in rows}


def recent_window(today: dt.date, days: int = RECENT_DAYS) -> tuple[dt.datetime, dt.datetime]:
    """The ``days`` China-time calendar days ending with ``today``, as naive UTC bounds."""
    return day_start(today - dt.timedelta(days=days - 1)), day_start(today + dt.timedelta(days=1))


def district_figures(session: Session, today: dt.date) -> DistrictFigures:
    residents = resident_count(session)
    cutoff = years_before(today, ELDERLY_AGE)
    elderly = _count(session, _born_on_or_before(cutoff))
    contracts, contracted, contracted_65 = _contracted(session, cutoff)
    tiers = tier_of_organizations(session)
    by_tier: dict[str, int] = {}
    for tier in tiers.values():
        by_tier[_known(tier)] = by_tier.get(_known(tier), 0) + 1
    visits: dict[str, int] = {}
    for org, n in visits_by_provider(session, *recent_window(today)).items():
        tier = _known(tiers.get(org, OTHER_TIER))
        visits[tier] = visits.get(tier, 0) + n
    return DistrictFigures(
        today=today,
        residents=residents,
        active_contracts=contracts,
        coverage=Coverage(residents, contracted),
        coverage_65=Coverage(elderly, contracted_65),
        facilities_by_tier=_ordered_tiers(by_tier),
        visits_by_tier=_ordered_tiers(visits),
    )


# -------------------------------------------------------------------------------- CDC


@dataclass(frozen=True)
class WeeklySeries:
    """Visits per China-time week (Monday first); the last week is the one holding ``today``."""

    weeks: list[dt.date]  # Monday of each week
    series: dict[str, list[int]]  # fever-clinic, respiratory, gastrointestinal


def week_starts(today: dt.date, weeks: int) -> list[dt.date]:
    monday = today - dt.timedelta(days=today.weekday())
    return [monday - dt.timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def _buckets(starts: Sequence[dt.date]) -> tuple[list[dt.datetime], Any]:
    """Week boundaries (naive UTC of China-time Mondays) and the CASE giving a date's week."""
    bounds = [day_start(d) for d in starts] + [day_start(starts[-1] + dt.timedelta(days=7))]
    bucket = case(
        *[(DateIndex.low < bounds[i + 1], i) for i in range(len(starts))],
        else_=len(starts),
    )
    return bounds, bucket


def _in_window(bounds: list[dt.datetime]) -> Any:
    return and_(
        DateIndex.res_type == "Encounter",
        DateIndex.param == "date",
        DateIndex.low >= bounds[0],
        DateIndex.low < bounds[-1],
    )


def _series_of(rows: Any, names: Sequence[str], weeks: int) -> dict[str, list[int]]:
    series = {name: [0] * weeks for name in names}
    for index, name, n in rows:
        if name in series and 0 <= int(index) < weeks:
            series[name][int(index)] = int(n)
    return series


def _fever_clinic_weeks(session: Session, starts: Sequence[dt.date]) -> list[int]:
    """R4 Encounter has no ``service-type`` search parameter (R5 added it), so the fever clinic
    is read from the JSON of the encounters already narrowed to the window by the date index."""
    bounds, bucket = _buckets(starts)
    coding = ResourceRow.content["serviceType"]["coding"][0]
    rows = session.execute(
        select(bucket, literal(FEVER_CLINIC), func.count(distinct(DateIndex.resource_pk)))
        .join(ResourceRow, ResourceRow.pk == DateIndex.resource_pk)
        .where(
            _in_window(bounds),
            coding["code"].as_string() == FEVER_CLINIC,
            coding["system"].as_string() == systems.DEPARTMENT,
        )
        .group_by(bucket)
    ).all()
    return _series_of(rows, [FEVER_CLINIC], len(starts))[FEVER_CLINIC]


def _reason_weeks(session: Session, starts: Sequence[dt.date]) -> dict[str, list[int]]:
    """Every syndrome in one pass: the window's encounters joined to their ICD-10 reasons."""
    bounds, bucket = _buckets(starts)
    reason = aliased(TokenIndex)
    matches = {
        name: or_(*[and_(reason.code >= low, reason.code < high) for low, high in ranges])
        for name, ranges in SYNDROME_RANGES.items()
    }
    syndrome = case(*[(match, name) for name, match in matches.items()], else_=None)
    rows = session.execute(
        select(bucket, syndrome, func.count(distinct(DateIndex.resource_pk)))
        .join(reason, reason.resource_pk == DateIndex.resource_pk)
        .where(
            _in_window(bounds),
            reason.res_type == "Encounter",
            reason.param == "reason-code",
            reason.system.in_(ICD10_SYSTEMS),
            or_(*matches.values()),
        )
        .group_by(bucket, syndrome)
    ).all()
    return _series_of(rows, list(SYNDROME_RANGES), len(starts))


def syndrome_weeks(session: Session, today: dt.date, weeks: int = 26) -> WeeklySeries:
    starts = week_starts(today, weeks)
    series = {FEVER_CLINIC: _fever_clinic_weeks(session, starts)}
    series.update(_reason_weeks(session, starts))
    return WeeklySeries(starts, series)


# ------------------------------------------------------------------------ clinicians


def panel_page(
    session: Session, practitioner_id: str, offset: int, limit: int
) -> tuple[int, list[str]]:
    """(total, patient ids of one page) of the family doctor's active contracts, by id."""
    manager, patient = aliased(ReferenceIndex), aliased(ReferenceIndex)
    ids = (
        select(patient.target_id)
        .join(manager, manager.resource_pk == patient.resource_pk)
        .where(
            manager.res_type == "EpisodeOfCare",
            manager.param == "care-manager",
            manager.target_type == "Practitioner",
            manager.target_id == practitioner_id,
            _probe_only(session, patient.res_type) == "EpisodeOfCare",
            _probe_only(session, patient.param) == "patient",
            _probe_only(session, patient.target_type) == "Patient",
            patient.resource_pk.in_(_active_contracts()),
        )
        .distinct()
    )
    total = _count(session, ids)
    page = session.execute(ids.order_by(patient.target_id).limit(limit).offset(offset))
    return total, [str(pid) for pid in page.scalars()]


def last_visits(session: Session, patient_ids: Sequence[str]) -> dict[str, dt.datetime]:
    """Start (naive UTC) of each patient's latest encounter."""
    if not patient_ids:
        return {}
    subject = aliased(ReferenceIndex)
    rows = session.execute(
        select(subject.target_id, func.max(DateIndex.low))
        .join(DateIndex, DateIndex.resource_pk == subject.resource_pk)
        .where(
            subject.res_type == "Encounter",
            subject.param == "subject",
            subject.target_type == "Patient",
            subject.target_id.in_(list(patient_ids)),
            DateIndex.res_type == "Encounter",
            DateIndex.param == "date",
        )
        .group_by(subject.target_id)
    ).all()
    return {str(pid): moment for pid, moment in rows if moment is not None}


@dataclass(frozen=True)
class OrganizationFigures:
    """Referral and visit counts of one facility (with its departments)."""

    referrals_total: int
    referrals_open: int
    visits_recent: int
    contracts_managed: int


def facility_and_departments(session: Session, organization_id: str) -> list[str]:
    part = aliased(ReferenceIndex)
    rows = session.execute(
        select(part.target_id, ResourceRow.res_id)
        .join(ResourceRow, ResourceRow.pk == part.resource_pk)
        .where(
            part.res_type == "Organization",
            part.param == "partof",
            part.target_type == "Organization",
            part.target_id == organization_id,
        )
    ).all()
    return [organization_id, *sorted(str(dept) for _, dept in rows)]


def organization_figures(
    session: Session, organization_id: str, today: dt.date
) -> OrganizationFigures:
    orgs = facility_and_departments(session, organization_id)
    performer = aliased(ReferenceIndex)
    referrals = select(performer.resource_pk).where(
        performer.res_type == "ServiceRequest",
        performer.param == "performer",
        performer.target_type == "Organization",
        performer.target_id.in_(orgs),
    )
    status = aliased(TokenIndex)
    open_referrals = referrals.where(
        exists().where(
            status.resource_pk == performer.resource_pk,
            status.res_type == "ServiceRequest",
            status.param == "status",
            status.code.in_(("draft", "active", "on-hold")),
        )
    )
    start, end = recent_window(today)
    visits = sum(n for org, n in visits_by_provider(session, start, end).items() if org in orgs)
    managing = aliased(ReferenceIndex)
    contracts = select(managing.resource_pk).where(
        managing.res_type == "EpisodeOfCare",
        managing.param == "organization",
        managing.target_type == "Organization",
        managing.target_id == organization_id,
        managing.resource_pk.in_(_active_contracts()),
    )
    return OrganizationFigures(
        referrals_total=_count(session, referrals.distinct()),
        referrals_open=_count(session, open_referrals.distinct()),
        visits_recent=visits,
        contracts_managed=_count(session, contracts.distinct()),
    )


def practitioners_by_role(session: Session, organization_id: str) -> dict[str, int]:
    """PractitionerRoles of the organisation by HL7 practitioner-role code (doctor, nurse …)."""
    org = aliased(ReferenceIndex)
    rows = session.execute(
        select(TokenIndex.code, func.count(distinct(TokenIndex.resource_pk)))
        .join(org, org.resource_pk == TokenIndex.resource_pk)
        .where(
            org.res_type == "PractitionerRole",
            org.param == "organization",
            org.target_type == "Organization",
            org.target_id == organization_id,
            TokenIndex.res_type == "PractitionerRole",
            TokenIndex.param == "role",
            TokenIndex.system == systems.HL7_PRACTITIONER_ROLE,
        )
        .group_by(TokenIndex.code)
    ).all()
    return {str(code): int(n) for code, n in sorted(rows)}
