"""Who may see and change what: every rule in one place (docs/authorization.md states each one
with its reason, under the rule names used here and in 403 responses).

Resources fall in four classes:

- **directory** (Organization, Location, Practitioner, PractitionerRole, HealthcareService,
  Schedule, Slot): who provides care where — readable by every authenticated user;
- **patient-linked** (the R4 Patient compartment, plus Task through ``Task.for``): a resource is
  visible when one of the patients it belongs to is visible to the principal;
- **admin-only** (AuditEvent, and Bundle/Binary which can carry anyone's data unindexed);
- **other** (definitions such as Medication, ValueSet, Questionnaire): clinicians and admins read.

The patients a principal may see are one SQL subquery (``visible_patients``), so searches are
restricted inside the database and paging and counts stay right.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    and_,
    any_,
    bindparam,
    exists,
    false,
    literal,
    or_,
    select,
    union,
)
from sqlalchemy import tuple_ as sql_tuple
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import BindParameter

from yilian.auth.principal import CLINICIANS, Principal, Role
from yilian.auth.scopes import scopes_permit
from yilian.fhir.compartment import patient_compartment, patients_of

# arch: store-access — the access policy is part of the store's guard: it builds the SQL
# restriction that searches run with, over the index tables, and returns no resource content.
from yilian.fhir.models import ReferenceIndex, ResourceRow, TokenIndex
from yilian.mpi.links import linked_ids

DIRECTORY_TYPES = frozenset(
    {
        "Organization",
        "Location",
        "Practitioner",
        "PractitionerRole",
        "HealthcareService",
        "Schedule",
        "Slot",
    }
)
# What a facility administrator maintains for his organisation (Practitioner is shared between
# organisations, so it stays with the system administrator).
FACILITY_TYPES = DIRECTORY_TYPES - {"Practitioner"}
ADMIN_ONLY_TYPES = frozenset({"AuditEvent", "Bundle", "Binary"})
# Patient-linked types outside the R4 compartment: the search parameter naming the patient.
EXTRA_PATIENT_LINKS = {"Task": ("patient",)}
ACTIVE = "active"


@cache
def patient_link_params() -> dict[str, tuple[str, ...]]:
    """Patient-linked type → the reference search parameters that name its patient."""
    links = {
        t: tuple(p)
        for t, p in patient_compartment().items()
        if t not in DIRECTORY_TYPES and t not in ADMIN_ONLY_TYPES and t != "Patient"
    }
    links.update(EXTRA_PATIENT_LINKS)
    return links


def resource_class(res_type: str) -> str:
    if res_type in DIRECTORY_TYPES:
        return "directory"
    if res_type in ADMIN_ONLY_TYPES:
        return "admin-only"
    if res_type == "Patient" or res_type in patient_link_params():
        return "patient"
    return "other"


@dataclass(frozen=True)
class Decision:
    """An answer with the rule that gave it (named in the 403 OperationOutcome and the audit)."""

    allowed: bool
    rule: str
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def allow(rule: str, reason: str = "") -> Decision:
    return Decision(True, rule, reason)


def deny(rule: str, reason: str) -> Decision:
    return Decision(False, rule, reason)


# ------------------------------------------------------------------- visible patients


@cache
def _refs(param: str, res_type: str) -> Any:
    """A named alias of the reference index, made once: building ORM aliases and adapting their
    columns anew costs ~40 ms per policy query (profiled), reusing them almost nothing."""
    return aliased(ReferenceIndex, name=f"ref_{res_type.lower()}_{param.replace('-', '_')}")


def _active(pk: Any) -> ColumnElement[bool]:
    return exists().where(
        TokenIndex.resource_pk == pk, TokenIndex.param == "status", TokenIndex.code == ACTIVE
    )


def _patients_via(
    res_type: str,
    link_param: str,
    target_type: str,
    targets: Any,
    patient_param: str,
    only: Only = None,
) -> Select[Any]:
    """Patients (ids) of ``res_type`` resources whose ``link_param`` points at ``targets`` (ids
    of ``target_type``, a list or a subquery) and that are active."""
    link, pat = _refs(link_param, res_type), _refs(patient_param, res_type + "p")
    return (
        select(pat.target_id)
        .select_from(link)
        .join(pat, pat.resource_pk == link.resource_pk)
        .where(
            link.res_type == res_type,
            link.param == link_param,
            link.target_type == target_type,
            link.target_id.in_(targets),
            pat.param == patient_param,
            pat.target_type == "Patient",
            _active(link.resource_pk),
            *_only(pat, only),
        )
    )


# ``only`` is a patient id, or a bound parameter standing for one (``_visible_one``).
Only = str | BindParameter[str] | None


def _only(pat: Any, patient_id: Only) -> list[ColumnElement[bool]]:
    """The filter for one patient, pushed into each branch so an index answers it."""
    return [] if patient_id is None else [pat.target_id == patient_id]


def _literal_part(value: str, only: Only) -> Select[Any] | None:
    """``SELECT value`` as a visible patient, when it can be the one asked about."""
    if only is None:
        return select(literal(value))
    if isinstance(only, str):
        return select(literal(value)) if only == value else None
    return select(literal(value)).where(only == value)  # decided in SQL, per parameter


def organisation_and_departments(organization_id: str) -> CompoundSelect[Any]:
    """The organisation and its departments (Organization.partOf = it, docs/synth.md)."""
    part = _refs("partof", "organization")
    departments = (
        select(ResourceRow.res_id)
        .join(part, part.resource_pk == ResourceRow.pk)
        .where(
            ResourceRow.res_type == "Organization",
            ResourceRow.deleted.is_(False),
            part.res_type == "Organization",  # lets the (res_type, param, target_id) index answer
            part.param == "partof",
            part.target_type == "Organization",
            part.target_id == organization_id,
        )
    )
    return select(literal(organization_id)).union(departments)


def _encounter_patients(organisations: CompoundSelect[Any], only: Only = None) -> Select[Any]:
    provider, pat = _refs("service-provider", "Encounter"), _refs("patient", "Encounterp")
    return (
        select(pat.target_id)
        .select_from(provider)
        .join(pat, pat.resource_pk == provider.resource_pk)
        .where(
            provider.res_type == "Encounter",
            provider.param == "service-provider",
            provider.target_type == "Organization",
            provider.target_id.in_(organisations.scalar_subquery()),
            pat.param == "patient",
            pat.target_type == "Patient",
            *_only(pat, only),
        )
    )


Patients = Select[Any] | CompoundSelect[Any]


def visible_patients(
    principal: Principal, *, extra: str | None = None, only: Only = None
) -> Patients | None:
    """``SELECT patient_id …`` of every patient whose record the principal may read (plus
    ``extra``, a patient opened by break-glass); None means every patient (admin). ``only``
    limits it to one patient id (the question "may he see this one?"), or to the value of a
    bound parameter."""
    role = principal.role
    if role is Role.ADMIN:
        return None
    parts: list[Select[Any]] = []
    literals = [extra] if extra is not None else []
    if role is Role.RESIDENT and principal.patient_id:
        literals.append(principal.patient_id)
    for value in literals:
        part = _literal_part(value, only)
        if part is not None:
            parts.append(part)
    if role in CLINICIANS and principal.practitioner_id:
        pid = principal.practitioner_id
        if role is Role.FAMILY_DOCTOR:
            # rule family-doctor-panel: his active family-doctor contracts (EpisodeOfCare with
            # careManager = him, written by yilian.synth.contracts)
            parts.append(
                _patients_via(
                    "EpisodeOfCare", "care-manager", "Practitioner", [pid], "patient", only
                )
            )
        # rule referral-to-me: active ServiceRequests (referral, consultation) to him
        parts.append(
            _patients_via("ServiceRequest", "performer", "Practitioner", [pid], "subject", only)
        )
    if role in CLINICIANS and principal.organization_id:
        orgs = organisation_and_departments(principal.organization_id)
        # rule referral-to-my-organization
        parts.append(
            _patients_via(
                "ServiceRequest",
                "performer",
                "Organization",
                orgs.scalar_subquery(),
                "subject",
                only,
            )
        )
        if role is Role.SPECIALIST:
            # rule encounter-at-my-organization
            parts.append(_encounter_patients(orgs, only))
    if not parts:
        return select(literal("")).where(false())
    return union(*parts) if len(parts) > 1 else parts[0]


@lru_cache(maxsize=1024)
def _visible_one(principal: Principal) -> Select[Any] | None:
    """``SELECT EXISTS (visible patient = :patient)`` for this principal, built once: building
    the statement anew for every check cost more CPU than running it (bench/
    referral_booking_profile.py, ADR 0020). None for an admin (every patient)."""
    visible = visible_patients(principal, only=bindparam("patient", type_=String))
    return None if visible is None else select(exists(visible.subquery()))


def may_read_patient(session: Session, principal: Principal, patient_id: str) -> bool:
    """Whether the principal may read this patient's record (without break-glass)."""
    statement = _visible_one(principal)
    if statement is None:
        return True
    if session.execute(statement, {"patient": patient_id}).scalar_one() is True:
        return True
    for member in sorted(linked_ids(session, [patient_id])):
        if session.execute(statement, {"patient": member}).scalar_one() is True:
            return True  # rule linked-records: one of the person's registrations is his
    return False


def _patient_ids(references: list[str]) -> list[str]:
    return [r.split("/", 1)[1] for r in references]


# ------------------------------------------------------------------------- reads


def read_decision(
    session: Session, principal: Principal, resource: dict[str, Any], *, extra: str | None = None
) -> Decision:
    """May the principal read this resource? ``extra`` is a patient opened by break-glass."""
    res_type = str(resource.get("resourceType", ""))
    if not scopes_permit(principal.scopes, "read", res_type):
        return deny("scope", f"the token's scopes do not allow reading {res_type}")
    if principal.role is Role.ADMIN:
        return allow("admin-all")
    kind = resource_class(res_type)
    if kind == "directory":
        return allow("directory-read")
    if principal.role is Role.STEWARD:
        if res_type == "Patient":
            return allow("steward-registrations")
        return deny(
            "steward-registrations",
            f"a data steward reads Patient registrations only, not {res_type}",
        )
    if kind == "admin-only":
        return deny("admin-only", f"{res_type} is readable by system administrators only")
    if kind == "other":
        if principal.is_clinician:
            return allow("definitions-clinicians")
        return deny("definitions-clinicians", f"{res_type} is readable by clinicians only")
    patients = _patient_ids(patients_of(resource))
    if not patients:
        return deny("patient-record", f"this {res_type} belongs to no patient you may see")
    if extra is not None and extra in patients:
        return allow("break-glass")
    if principal.role not in (Role.RESIDENT, *CLINICIANS):
        return deny(
            "no-individual-records",
            f"role {principal.role.value} sees no individual records through FHIR",
        )
    for patient in patients:
        if may_read_patient(session, principal, patient):
            return allow("patient-record")
    return deny(_patient_rule(principal), _patient_reason(principal, patients[0]))


def _patient_rule(principal: Principal) -> str:
    return "own-record" if principal.role is Role.RESIDENT else "care-relationship"


def _patient_reason(principal: Principal, patient: str) -> str:
    if principal.role is Role.RESIDENT:
        return "a resident may read only his own record"
    return (
        f"Patient/{patient} is not in your contracted panel, not under an active referral to "
        "you or your organization"
        + (
            " and has no encounter at your organization"
            if principal.role is Role.SPECIALIST
            else ""
        )
        + " (break-glass: X-Break-Glass: <reason>)"
    )


# Up to this many visible patients are fetched once per request and inlined as a literal list
# (a family doctor's panel is ~1,000 at scale 1.0); more (a big hospital's specialists) stay a
# sub-select evaluated inside each query.
MATERIALISE_LIMIT = 2000
# On PostgreSQL a longer list, up to this many, is still used: as one array parameter
# (``= ANY(…)``), not a literal list. Finding the list too long had already computed it, and the
# statement then computed it again as a sub-select: a third of the referral queue of a hospital
# with 3,000 referred patients (ADR 0020). Such a list is what the sub-select gives: the
# linked-records step (up to MATERIALISE_LIMIT ids) is left out as it is there.
ARRAY_LIMIT = 20_000


def visible_ids(
    session: Session, principal: Principal, *, extra: str | None = None
) -> list[str] | None:
    """The visible patient ids as a list when there are at most ``MATERIALISE_LIMIT`` (on
    PostgreSQL ``ARRAY_LIMIT``), else None (and None for an admin, who sees everyone)."""
    visible = visible_patients(principal, extra=extra)
    if visible is None:
        return None
    postgres = session.get_bind().dialect.name == "postgresql"
    cap = ARRAY_LIMIT if postgres else MATERIALISE_LIMIT
    rows = session.execute(visible.limit(cap + 1)).scalars().all()
    if len(rows) > cap:
        return None
    if len(rows) > MATERIALISE_LIMIT:
        return sorted({str(r) for r in rows})
    found = {str(r) for r in rows}
    found |= linked_ids(session, found)  # rule linked-records (see may_read_patient)
    return sorted(found) if len(found) <= MATERIALISE_LIMIT else None


def search_clause(
    principal: Principal,
    resource: Any,
    *,
    extra: str | None = None,
    ids_list: list[str] | None = None,
    types: Collection[str] | None = None,
) -> ColumnElement[bool] | None:
    """The SQL condition on ``resource`` (an aliased ResourceRow) that keeps only what the
    principal may read; None = no restriction (admin with full scopes). ``ids_list`` is the
    principal's visible patients from ``visible_ids`` (same request), used instead of the
    sub-select when given. ``types``, when the statement can only return resources of those
    types (e.g. a Task search), leaves out the rules of every other type: a Task is then tested
    on its own patient reference (``Task.for``) instead of against every resource of every
    visible patient — the same rows pass (ADR 0020)."""
    visible = visible_patients(principal, extra=extra)
    parts: list[ColumnElement[bool]] = []
    readable = _readable_types(principal)
    if visible is None and readable is None:
        return None
    wanted = None if types is None else frozenset(types)

    def typed(kinds: frozenset[str]) -> frozenset[str]:
        kinds = kinds if readable is None else kinds & readable
        return kinds if wanted is None else kinds & wanted

    if principal.role is Role.ADMIN:
        only: ColumnElement[bool] = resource.res_type.in_(sorted(typed(readable or frozenset())))
        return only
    directory = typed(DIRECTORY_TYPES)
    if directory or wanted is None:
        parts.append(resource.res_type.in_(sorted(directory)))
    if principal.role is Role.STEWARD and "Patient" in typed(frozenset({"Patient"})):
        parts.append(resource.res_type == "Patient")  # rule steward-registrations
    if principal.is_clinician:
        other = typed(_other_types())
        if other or wanted is None:
            parts.append(resource.res_type.in_(sorted(other)))
    if principal.role in (Role.RESIDENT, *CLINICIANS) or extra is not None:
        assert visible is not None
        ids: Any = ids_list if ids_list is not None else visible.scalar_subquery()
        array = ids_list is not None and len(ids_list) > MATERIALISE_LIMIT
        if array:
            ids = bindparam("visible_ids", ids_list, type_=ARRAY(String))

        def among(column: Any) -> ColumnElement[bool]:
            found: ColumnElement[bool] = column == any_(ids) if array else column.in_(ids)
            return found

        patient_types = typed(frozenset(patient_link_params()) | {"Patient"})
        if "Patient" in patient_types:
            parts.append(and_(resource.res_type == "Patient", among(resource.res_id)))
        pairs = [
            (t, p)
            for t, params in patient_link_params().items()
            if t in patient_types
            for p in params
        ]
        if pairs:
            # Driven from the few visible patients through the (target_type, target_id) index,
            # not by probing every candidate resource: a panel is small, Observations are many.
            ref = _refs("visible", "any")
            owners = select(ref.resource_pk).where(
                ref.target_type == "Patient",
                among(ref.target_id),
                sql_tuple(ref.res_type, ref.param).in_(pairs),
            )
            parts.append(resource.pk.in_(owners))
    return or_(*parts) if parts else false()


@cache
def _other_types() -> frozenset[str]:
    from yilian.fhir.searchparams.registry import resource_types

    return frozenset(t for t in resource_types() if resource_class(t) == "other")


def _readable_types(principal: Principal) -> frozenset[str] | None:
    """Types the token's scopes allow reading; None = every type."""
    from yilian.fhir.searchparams.registry import resource_types

    if scopes_permit(principal.scopes, "read", "*") and any(
        s.split("/", 1)[1].startswith("*.") for s in principal.scopes
    ):
        return None
    return frozenset(t for t in resource_types() if scopes_permit(principal.scopes, "read", t))


# ------------------------------------------------------------------------- writes


def write_decision(
    session: Session,
    principal: Principal,
    res_type: str,
    new: dict[str, Any] | None,
    old: dict[str, Any] | None,
) -> Decision:
    """May the principal create/update (``new``) or delete (``new`` None) this resource?"""
    if not scopes_permit(principal.scopes, "write", res_type):
        return deny("scope", f"the token's scopes do not allow writing {res_type}")
    if principal.break_glass is not None:
        return deny("break-glass-read-only", "break-glass grants read access only")
    if principal.role is Role.ADMIN:
        return allow("admin-all")
    if principal.role is Role.STEWARD:
        return _steward_write(res_type, new, old)
    kind = resource_class(res_type)
    versions = [r for r in (new, old) if r is not None]
    if principal.role is Role.FACILITY_ADMIN and res_type in FACILITY_TYPES:
        org = principal.organization_id or ""
        for version in versions:
            if not belongs_to_organisation(session, version, org):
                return deny(
                    "facility-directory",
                    f"this {res_type} does not belong to Organization/{org}",
                )
        return allow("facility-directory")
    if principal.is_clinician and kind == "patient":
        if res_type == "Patient" and old is None:
            return deny(
                "patient-registration", "new residents are registered by system administrators"
            )
        patients = sorted({p for v in versions for p in _patient_ids(patients_of(v))})
        if not patients:
            return deny("patient-record", f"this {res_type} names no patient")
        for patient in patients:
            if not may_read_patient(session, principal, patient):
                return deny("care-relationship", _patient_reason(principal, patient))
        return allow("care-relationship")
    return deny("write-role", f"role {principal.role.value} may not write {res_type} resources")


# What a steward's decision changes on a Patient (yilian.mpi.review.decisions); ``meta`` and
# ``text`` are the server's and the narrative's.
STEWARD_FIELDS = frozenset({"link", "active", "meta", "text"})


def _steward_write(
    res_type: str, new: dict[str, Any] | None, old: dict[str, Any] | None
) -> Decision:
    """rule steward-links: a steward links, merges and unmerges existing registrations."""
    if res_type == "Patient" and new is not None and old is not None:
        changed = {
            key
            for key in set(new) | set(old)
            if key not in STEWARD_FIELDS and new.get(key) != old.get(key)
        }
        if not changed:
            return allow("steward-links")
        return deny(
            "steward-links",
            f"a data steward changes only Patient.link and Patient.active, not "
            f"{', '.join(sorted(changed))}",
        )
    return deny(
        "steward-links",
        "a data steward changes only Patient.link and Patient.active of existing Patients",
    )


def _ref_id(value: Any, res_type: str) -> str | None:
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and ref.startswith(f"{res_type}/"):
            return ref.split("/", 1)[1]
    return None


def _owner_refs(resource: dict[str, Any]) -> list[Any]:
    """The references that tie a directory resource to its organisation (or to another
    directory resource that does)."""
    res_type = resource.get("resourceType")
    if res_type == "Organization":
        return [{"reference": f"Organization/{resource.get('id')}"}, resource.get("partOf")]
    if res_type == "Location":
        return [resource.get("managingOrganization")]
    if res_type == "PractitionerRole":
        return [resource.get("organization")]
    if res_type == "HealthcareService":
        return [resource.get("providedBy")]
    if res_type == "Schedule":
        return list(resource.get("actor") or [])
    if res_type == "Slot":
        return [resource.get("schedule")]
    return []


def belongs_to_organisation(
    session: Session, resource: dict[str, Any], organization_id: str, *, depth: int = 0
) -> bool:
    """Whether a directory resource is the organisation's (itself, a department of it, or
    through its Location/PractitionerRole/HealthcareService/Schedule)."""
    if depth > 3:
        return False
    for ref in _owner_refs(resource):
        org = _ref_id(ref, "Organization")
        if org == organization_id:
            return True
        for target_type in ("Location", "PractitionerRole", "HealthcareService", "Schedule"):
            target_id = _ref_id(ref, target_type)
            if target_id is None:
                continue
            row = session.execute(
                select(ResourceRow.content).where(
                    ResourceRow.res_type == target_type,
                    ResourceRow.res_id == target_id,
                    ResourceRow.deleted.is_(False),
                )
            ).scalar_one_or_none()
            if row is not None and belongs_to_organisation(
                session, row, organization_id, depth=depth + 1
            ):
                return True
    if resource.get("resourceType") == "Organization" and depth == 0:
        parent = _ref_id(resource.get("partOf"), "Organization")
        return parent == organization_id
    return False


# ------------------------------------------------------------------ whole operations


def may_bulk(principal: Principal, access: str) -> Decision:
    """Bulk $export (read) / $import (write) move every record at once: admin with a system
    scope only."""
    from yilian.auth.scopes import has_system_scope

    if principal.role is Role.ADMIN and has_system_scope(principal.scopes, access):
        return allow("bulk-admin")
    return deny("bulk-admin", "bulk data needs the admin role and a system/*.* scope")


def may_history_across(principal: Principal, res_type: str | None) -> Decision:
    """Type- and system-level ``_history`` list everyone's changes: admin only, except for
    directory types."""
    if principal.role is Role.ADMIN:
        if res_type is None or scopes_permit(principal.scopes, "read", res_type):
            return allow("admin-all")
        return deny("scope", f"the token's scopes do not allow reading {res_type}")
    if res_type in DIRECTORY_TYPES and scopes_permit(principal.scopes, "read", res_type):
        return allow("directory-read")
    return deny(
        "history-across-records",
        "history across records is for system administrators (directory types excepted)",
    )


__all__ = [
    "DIRECTORY_TYPES",
    "Decision",
    "belongs_to_organisation",
    "may_bulk",
    "may_history_across",
    "may_read_patient",
    "read_decision",
    "search_clause",
    "visible_patients",
    "write_decision",
]
