"""Family-doctor "1+1+1" contracts (china-rules.md §8): sign, look up, and the booking rule.

A contract has the shape the synthetic district gives it (yilian.synth.contracts): an
EpisodeOfCare (type family-doctor contract, managed by the CHC, care manager the family doctor)
and a CareTeam listing the four choices — the family doctor on behalf of the CHC, the CHC, one
district hospital and one municipal hospital. Residents sign with one CHC family doctor first and
then choose the two hospitals; within the combination they may use any of the three, **outside
it a visit needs a referral** by the family doctor or the contracted district institution (§8).
Priority groups (§8: residents aged 60+ and chronic-disease patients first; seed 004 adds the
disabled and special-hardship families) are recorded on the EpisodeOfCare.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, String, bindparam, exists, select
from sqlalchemy.orm import aliased

from yilian.fhir import search as search_engine
from yilian.fhir import systems
from yilian.fhir.errors import invalid, not_found

# arch: store-access — the 1+1+1 rule's check of a resident's contract, run on every booking, is
# one prepared statement over the CareTeam's index rows (the search it replaces, without its
# per-call statement building); it returns the contract to the rule, nothing to the user.
from yilian.fhir.models import ReferenceIndex, ResourceRow, TokenIndex
from yilian.fhir.store import ResourceStore
from yilian.referral import resources as rs
from yilian.referral.errors import conflict, forbidden
from yilian.referral.resources import Json
from yilian.synth.contracts import CONTRACT_CODE, Contract, care_team, episode_of_care

PRIORITY_AGE = 60  # china-rules.md §8: priority for residents aged 60+
# Chronic conditions that make a resident a priority signer (ICD-10 3-character categories):
# hypertension, diabetes, COPD, coronary heart disease, stroke — the key chronic diseases of the
# basic public health service and seed 004 (the same list as yilian.synth.health).
CHRONIC_ICD10 = ("I10", "I11", "I12", "I13", "I15", "E10", "E11", "E14", "J44", "I20", "I21",
                 "I25", "I63", "I64")  # fmt: skip
PRIORITY_GROUPS = {
    "elderly-60": "60岁及以上老年人",
    "chronic": "慢性病患者",
    "disabled": "残疾人",
    "special-family": "计划生育特殊家庭",
}
# Organization tiers (systems.ORGANIZATION_TIER, yilian.synth.facilities.TIERS) each role needs.
ROLE_TIERS = {
    "chc": ("community",),
    "district": ("district-regional",),
    "municipal": ("municipal",),
}
HOSPITAL_TIERS = ("district-regional", "municipal")


@dataclass(frozen=True)
class SignRequest:
    patient: str
    family_doctor: str
    chc: str
    district_hospital: str
    municipal_hospital: str
    start: dt.date
    declared_groups: tuple[str, ...] = ()  # disabled / special-family: declared, not derivable


def organization_tier(store: ResourceStore, org_id: str) -> str | None:
    row = store.current_row("Organization", org_id)
    if row is None or row.deleted:
        return None
    return rs.code_of(row.content.get("type", []), systems.ORGANIZATION_TIER)


@cache
def _contract_statement() -> Select[Any]:
    """The resident's (``:patient``) first active contract CareTeam: the search ``CareTeam?
    patient=Patient/{id}&status=active&category={contract}&_count=1`` (same index rows, same
    first match by primary key), built once — booking checks it on every request and building
    the search's statement cost more CPU than running it (ADR 0020)."""
    team = aliased(ResourceRow, name="contract_team")
    patients = select(ReferenceIndex.resource_pk).where(
        ReferenceIndex.res_type == "CareTeam",
        ReferenceIndex.param == "patient",
        ReferenceIndex.target_id == bindparam("patient", type_=String),
        ReferenceIndex.target_type == "Patient",
    )

    def token(param: str, code: str, system: str | None = None) -> ColumnElement[bool]:
        return exists().where(
            TokenIndex.resource_pk == team.pk,
            TokenIndex.param == param,
            TokenIndex.code == code,
            *([TokenIndex.system == system] if system is not None else []),
        )

    return (
        select(team.content)
        .where(
            team.res_type == "CareTeam",
            team.deleted.is_(False),
            team.pk.in_(patients),
            token("status", "active"),
            token("category", CONTRACT_CODE, systems.FAMILY_DOCTOR_CONTRACT),
        )
        .order_by(team.pk)
        .limit(1)
    )


def _contract_team(store: ResourceStore, patient_id: str) -> Json | None:
    """The resident's active contract CareTeam — a rule check by the server, not a disclosure."""
    store.flush()
    found = store.session.execute(_contract_statement(), {"patient": patient_id}).scalar()
    return dict(found) if found is not None else None


def contracted_organizations(store: ResourceStore, patient_id: str) -> set[str] | None:
    """The organizations of the resident's active 1+1+1 contract, or None when not contracted."""
    team = _contract_team(store, patient_id)
    if team is None:
        return None
    found = set()
    for participant in team.get("participant", []):
        for key in ("member", "onBehalfOf"):
            org = rs.ref_id(participant.get(key), "Organization")
            if org:
                found.add(org)
    return found


def family_doctor_of(store: ResourceStore, patient_id: str) -> str | None:
    team = _contract_team(store, patient_id)
    if team is None:
        return None
    for participant in team.get("participant", []):
        if rs.has_coding(participant.get("role", []), systems.FAMILY_DOCTOR_CONTRACT,
                         "family-doctor"):  # fmt: skip
            return rs.ref_id(participant.get("member"), "Practitioner")
    return None


def priority_groups(store: ResourceStore, patient: Json, declared: tuple[str, ...],
                    on: dt.date) -> list[str]:  # fmt: skip
    groups = []
    birth = patient.get("birthDate")
    if isinstance(birth, str) and len(birth) >= 4:
        born = dt.date.fromisoformat(birth if len(birth) == 10 else f"{birth[:4]}-01-01")
        age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
        if age >= PRIORITY_AGE:
            groups.append("elderly-60")
    store.flush()
    conditions = search_engine.search(
        store.session,
        "Condition",
        [("patient", f"Patient/{patient['id']}"), ("_count", "200")],
        base_url="",
    )
    for entry in conditions.get("entry", []):
        codes = [c.get("code", "") for c in entry["resource"].get("code", {}).get("coding", [])]
        if any(str(code)[:3] in CHRONIC_ICD10 for code in codes):
            groups.append("chronic")
            break
    groups += [g for g in declared if g not in groups]
    return groups


def _content(store: ResourceStore, res_type: str, res_id: str) -> Json:
    row = store.current_row(res_type, res_id)
    if row is None or row.deleted:
        raise not_found(f"{res_type}/{res_id} is not known")
    content: Json = row.content
    return content


def check_signer(request: SignRequest, organization: str | None, practitioner: str | None) -> None:
    """A family doctor signs for himself at his own CHC (``sign`` writes past the user's guard,
    so this is the authorisation): 403 naming the field otherwise. Administrators pass None."""
    if organization is None and practitioner is None:
        return
    if request.family_doctor != practitioner:
        raise forbidden(
            "contract-own-family-doctor",
            f"a family doctor signs contracts for himself (Practitioner/{practitioner}), not "
            f"for Practitioner/{request.family_doctor}",
            expression="family_doctor",
        )
    if request.chc != organization:
        raise forbidden(
            "contract-own-chc",
            f"a family doctor signs contracts for his own CHC (Organization/{organization}), "
            f"not for Organization/{request.chc}",
            expression="chc",
        )


def sign(store: ResourceStore, request: SignRequest) -> tuple[Json, Json]:
    """Create the contract (EpisodeOfCare + CareTeam); 409 if the resident already has one.

    Signing is what creates the family doctor's relationship with the resident, so it reads the
    resident and writes the contract as the server (the caller checked the doctor's role); the
    writes are audited under the doctor's name like any other.
    """
    for group in request.declared_groups:
        if group not in ("disabled", "special-family"):
            raise invalid(
                f"declared priority group must be 'disabled' or 'special-family', not {group!r}",
                expression="declared_groups",
                rule="contract-priority-group",
            )
    patient = _content(store, "Patient", request.patient)
    _content(store, "Practitioner", request.family_doctor)
    names: dict[str, str] = {}
    for field, org_id in (("chc", request.chc), ("district", request.district_hospital),
                          ("municipal", request.municipal_hospital)):  # fmt: skip
        tier = organization_tier(store, org_id)
        if tier not in ROLE_TIERS[field]:
            raise invalid(
                f"{field} organization {org_id!r} has tier {tier!r}; a 1+1+1 contract needs "
                f"one of {ROLE_TIERS[field]} here (china-rules.md §8)",
                expression=field,
                rule="contract-1-1-1",
            )
        names[org_id] = str(_content(store, "Organization", org_id).get("name", org_id))
    if _contract_team(store, request.patient) is not None:
        raise conflict(
            "contract-single-active",
            f"Patient/{request.patient} already has an active family-doctor contract",
        )
    contract = Contract(
        f"{request.patient}-fdc"[:64], request.family_doctor, request.chc,
        request.district_hospital, request.municipal_hospital, request.start,
    )  # fmt: skip
    team = care_team(contract, patient, names)
    episode = episode_of_care(contract, patient, names)
    for group in priority_groups(store, patient, request.declared_groups, request.start):
        episode.setdefault("extension", []).append(
            {
                "url": systems.EXT_CONTRACT_PRIORITY_GROUP,
                "valueCoding": rs.coding(
                    systems.CONTRACT_PRIORITY_GROUP, group, PRIORITY_GROUPS[group]
                ),
            }
        )
    system = (
        ResourceStore(store.session, store.options) if type(store) is not ResourceStore else store
    )
    stored_team = system.update("CareTeam", contract.id, team).resource
    stored_episode = system.update("EpisodeOfCare", contract.id, episode).resource
    system.flush()
    return stored_episode, stored_team
