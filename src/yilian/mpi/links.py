"""Persons: the Patients joined by ``Patient.link``, and the golden record among them.

A person is the connected set of Patient records linked to each other by ``Patient.link`` of any
type: ``seealso`` between members and their golden record (the batch job, the real-time match,
a steward's link) and ``replaced-by``/``replaces`` between a merged duplicate and its survivor.
Links are followed both ways and over several hops, so a person stays whole whatever order its
links were written in (docs/mpi.md "Persons and links").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

# arch: store-access — persons are read from Patient.link in the store (content and the reference
# index) by the patient index, $everything and the access policy; nothing is disclosed here.
from yilian.fhir.models import ReferenceIndex, ResourceRow

# A person of more records than this is a data error (a link chain gone wrong), not a resident:
# the walk stops there rather than read the whole population.
MAX_PERSON = 200
MAX_HOPS = 8
# Links followed by readers of committed links ($everything, the access policy): a batch star is
# two hops from member to member; a steward's pairwise links can chain a little further.
PERSON_HOPS = 4


def link_targets(patient: dict[str, Any]) -> list[str]:
    """Ids of the Patients this one links to (``Patient.link.other`` = ``Patient/{id}``)."""
    out = []
    for link in patient.get("link") or []:
        ref = ((link or {}).get("other") or {}).get("reference")
        if isinstance(ref, str) and ref.startswith("Patient/") and ref.count("/") == 1:
            out.append(ref.split("/", 1)[1])
    return out


def _contents(session: Session, ids: Iterable[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    """(pk, content) of live Patients; the pk orders registrations by age."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(ResourceRow.res_id, ResourceRow.pk, ResourceRow.content).where(
            ResourceRow.res_type == "Patient",
            ResourceRow.res_id.in_(wanted),
            ResourceRow.deleted.is_(False),
        )
    )
    return {res_id: (pk, content) for res_id, pk, content in rows}


def person_of(
    session: Session, patient_id: str, known: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Every live Patient of the person ``patient_id`` belongs to, by id (itself included).

    Links are read from the records' content (a link written in this transaction counts);
    ``known`` supplies contents already at hand (the Patient being written, not stored yet).
    Members come oldest registration first (``known`` ones last).
    """
    never = 2**62  # the order of a Patient not stored yet: after every stored one
    members = {pid: (never, content) for pid, content in (known or {}).items()}
    if patient_id not in members:
        members.update(_contents(session, [patient_id]))
    if patient_id not in members:
        return {}
    frontier = [patient_id]
    for _ in range(MAX_HOPS):
        found = {t for pid in frontier for t in link_targets(members[pid][1])}
        found |= _linking_to(session, frontier)
        new = sorted(found - set(members))
        if not new:
            break
        members.update(_contents(session, new))
        frontier = [n for n in new if n in members]
        if len(members) >= MAX_PERSON:
            break
    ordered = sorted(members.items(), key=lambda item: (item[1][0], item[0]))
    return {pid: content for pid, (_, content) in ordered}


def _linking_to(session: Session, ids: list[str]) -> set[str]:
    """Patients whose ``link`` points at one of ``ids`` (a link written only on one side)."""
    rows = session.execute(
        select(ResourceRow.res_id)
        .join(ReferenceIndex, ReferenceIndex.resource_pk == ResourceRow.pk)
        .where(
            ReferenceIndex.res_type == "Patient",
            ReferenceIndex.param == "link",
            ReferenceIndex.target_type == "Patient",
            ReferenceIndex.target_id.in_(ids),
            ResourceRow.deleted.is_(False),
        )
    )
    return {res_id for (res_id,) in rows}


def linked_ids(session: Session, ids: Iterable[str], *, hops: int = PERSON_HOPS) -> set[str]:
    """Patients joined to ``ids`` by committed ``Patient.link`` (either side, ``hops`` deep),
    from the reference index; ``ids`` themselves are not included unless linked back."""
    seen = set(ids)
    frontier = sorted(seen)
    found: set[str] = set()
    for _ in range(hops):
        if not frontier:
            break
        outgoing = session.execute(
            select(ReferenceIndex.target_id)
            .join(ResourceRow, ResourceRow.pk == ReferenceIndex.resource_pk)
            .where(
                ResourceRow.res_type == "Patient",
                ResourceRow.res_id.in_(frontier),
                ResourceRow.deleted.is_(False),
                ReferenceIndex.param == "link",
                ReferenceIndex.target_type == "Patient",
            )
        ).scalars()
        step = {str(t) for t in outgoing if t} | _linking_to(session, frontier)
        frontier = sorted(step - seen)
        seen |= step
        found |= step
    return found


def golden_of(members: dict[str, dict[str, Any]]) -> str:
    """The golden record: the member most others link to or from (the hub of the batch job's
    star), ties to the oldest registration (``members`` in ``person_of``'s order); never a
    merged-away record (``replaced-by``) while the person has another."""

    def replaced(content: dict[str, Any]) -> bool:
        return any((link or {}).get("type") == "replaced-by" for link in content.get("link") or [])

    degree = {pid: 0 for pid in members}
    for pid, content in members.items():
        for target in link_targets(content):
            if target in degree:
                degree[pid] += 1
                degree[target] += 1
    eligible = [pid for pid, content in members.items() if not replaced(content)] or list(members)
    age = {pid: k for k, pid in enumerate(members)}
    return min(eligible, key=lambda pid: (-degree[pid], age[pid]))
