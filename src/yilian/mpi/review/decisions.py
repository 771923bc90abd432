"""The steward's decisions on a review item: link, not-link, merge, and undo of the last one.

Every decision is FHIR writes through the caller's store (validated, versioned, access-checked
and audited like any write) plus one ``operation`` entry in the audit chain that names the
decision, and a row in ``mpi_review_decision`` with the versions it wrote. Undo writes, for each
resource the decision changed, a new version whose content is the version before the decision —
history keeps all of them — and refuses when the resource changed since (its newer content would
be lost).

- **link**: the two registrations are the same person. Their persons (``yilian.mpi.links``: the
  records already linked to each) become one: the golden record of each gets ``Patient.link``
  of type ``seealso`` to the other's, as the batch job links members and their golden record
  (docs/mpi.md "Batch deduplication") — for two lone registrations, the pair itself. A pair
  already of one person is marked linked without a write.
- **not-link**: different people; nothing is written, the item remembers it so the matchers do not
  propose the pair again (``queue.enqueue_candidate``).
- **merge** (FHIR's pattern, http://hl7.org/fhir/R4/patient-definitions.html#Patient.link): the
  duplicate gets ``replaced-by`` the survivor and ``active: false``, the survivor ``replaces`` the
  duplicate. References elsewhere are not rewritten: readers follow the links, and an unmerge
  then needs to touch two resources only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from yilian.fhir.errors import conflict, invalid, not_found
from yilian.fhir.service import FhirService
from yilian.fhir.store import Access
from yilian.mpi.links import golden_of, person_of
from yilian.mpi.review.models import DecisionRow, ReviewRow
from yilian.mpi.review.queue import ReviewError, get_item, now

Action = Literal["link", "not-link", "merge"]
ACTIONS: tuple[str, ...] = ("link", "not-link", "merge")
STATUS_AFTER = {"link": "linked", "not-link": "not-linked", "merge": "merged"}
# The link types a decision writes between the pair (and removes again on undo or re-decision).
PAIR_LINK_TYPES = frozenset({"seealso", "replaced-by", "replaces"})


@dataclass(frozen=True)
class Change:
    """One resource a decision rewrote: its version before and the version the decision wrote."""

    reference: str
    before: int
    after: int

    def as_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "before": self.before, "after": self.after}


def _item(session: Session, item_id: int) -> ReviewRow:
    try:
        return get_item(session, item_id, for_update=True)
    except ReviewError as exc:
        raise not_found(str(exc)) from exc


def _without_pair_links(patient: dict[str, Any], other: str) -> list[dict[str, Any]]:
    target = f"Patient/{other}"
    return [
        link
        for link in patient.get("link", [])
        if not (
            (link.get("other") or {}).get("reference") == target
            and link.get("type") in PAIR_LINK_TYPES
        )
    ]


def _link_to(other: str, kind: str) -> dict[str, Any]:
    return {"other": {"reference": f"Patient/{other}"}, "type": kind}


def _rewrite(
    service: FhirService, patient_id: str, links: list[dict[str, Any]], active: bool | None = None
) -> Change:
    """Write the Patient with new links (and ``active`` unless None); the change it made."""
    row = service.store.current_row("Patient", patient_id, for_update=True)
    if row is None or row.deleted:
        raise not_found(f"Patient/{patient_id} is not in the store (deleted or never loaded)")
    before = row.version_id
    resource = copy.deepcopy(service.store.read("Patient", patient_id, audit=False))
    resource.pop("meta", None)
    if links:
        resource["link"] = links
    else:
        resource.pop("link", None)
    if active is not None:
        resource["active"] = active
    written = service.store.update("Patient", patient_id, resource, if_match=before)
    return Change(f"Patient/{patient_id}", before, written.version_id)


def _survivor(item: ReviewRow, survivor: str | None) -> tuple[str, str]:
    """(survivor, duplicate) of a merge; the survivor must be one of the pair."""
    if survivor not in (item.patient_a, item.patient_b):
        raise invalid(
            f"survivor must be Patient {item.patient_a} or {item.patient_b} of review item "
            f"{item.id}, got {survivor!r}",
            expression="survivor",
            rule="mpi-merge-survivor",
        )
    duplicate = item.patient_b if survivor == item.patient_a else item.patient_a
    return survivor, duplicate


def _join(
    service: FhirService, one: str, other: str, kinds: tuple[str, str], *, retire: bool = False
) -> list[Change]:
    """Link ``one`` to ``other`` (``kinds[0]``) and back (``kinds[1]``), replacing any earlier
    link between the two; ``retire`` makes ``other`` inactive (a merged-away duplicate)."""
    first = service.store.read("Patient", one, audit=False)
    second = service.store.read("Patient", other, audit=False)
    return [
        _rewrite(service, one, [*_without_pair_links(first, other), _link_to(other, kinds[0])]),
        _rewrite(
            service,
            other,
            [*_without_pair_links(second, one), _link_to(one, kinds[1])],
            False if retire else None,
        ),
    ]


def _link_persons(service: FhirService, a: str, b: str) -> list[Change]:
    """Mutual ``seealso`` between the golden records of the persons of ``a`` and ``b``."""
    service.store.flush()
    gold_a = golden_of(person_of(service.session, a))
    gold_b = golden_of(person_of(service.session, b))
    if gold_a == gold_b:
        return []
    return _join(service, gold_a, gold_b, ("seealso", "seealso"))


def _apply(
    service: FhirService, item: ReviewRow, action: str, survivor: str | None
) -> list[Change]:
    for pid in (item.patient_a, item.patient_b):  # 404/410 naming a Patient that is gone
        service.store.read("Patient", pid, audit=False)
    if action == "not-link":
        return []
    if action == "link":
        return _link_persons(service, item.patient_a, item.patient_b)
    keep, drop = _survivor(item, survivor)
    return _join(service, keep, drop, ("replaces", "replaced-by"), retire=True)


def _audit(service: FhirService, item: ReviewRow, action: str, changes: list[Change]) -> None:
    patients = (f"Patient/{item.patient_a}", f"Patient/{item.patient_b}")
    written = tuple(f"{c.reference}/_history/{c.after}" for c in changes)
    service.store.audit(
        Access("operation", written or patients, patients, query=f"$mpi-{action} review={item.id}")
    )


def decide(
    service: FhirService,
    item_id: int,
    action: str,
    actor: str,
    *,
    survivor: str | None = None,
) -> ReviewRow:
    """Record the steward's decision on an open item, with its FHIR writes, in one transaction."""
    if action not in ACTIONS:
        raise invalid(
            f"decision must be one of {', '.join(ACTIONS)}, got {action!r}",
            expression="action",
            rule="mpi-decision",
        )
    session = service.session
    item = _item(session, item_id)
    if item.status != "open":
        raise conflict(
            f"review item {item_id} is already {item.status}; undo that decision first",
            rule="mpi-review-open",
        )
    changes = _apply(service, item, action, survivor)
    moment = now()
    session.add(
        DecisionRow(
            review_id=item.id,
            action=action,
            actor=actor,
            at=moment,
            changes=[c.as_json() for c in changes],
            undone=False,
        )
    )
    item.status = STATUS_AFTER[action]
    item.decided_by, item.decided_at, item.updated = actor, moment, moment
    _audit(service, item, action, changes)
    session.flush()
    return item


def last_decision(session: Session, item_id: int) -> DecisionRow | None:
    """The decision now in force on the item (the newest that is not undone), if any."""
    return session.scalars(
        select(DecisionRow)
        .where(DecisionRow.review_id == item_id, DecisionRow.action != "undo")
        .where(DecisionRow.undone.is_(False))
        .order_by(DecisionRow.id.desc())
        .limit(1)
    ).one_or_none()


def _restore(service: FhirService, change: dict[str, Any]) -> Change:
    res_type, res_id = str(change["reference"]).split("/", 1)
    row = service.store.current_row(res_type, res_id, for_update=True)
    if row is None or row.deleted or row.version_id != change["after"]:
        now_at = "deleted" if row is None or row.deleted else f"at version {row.version_id}"
        raise conflict(
            f"{change['reference']} changed after the decision (it wrote version "
            f"{change['after']}, the resource is {now_at}); undoing would lose that change",
            rule="mpi-undo-unchanged",
        )
    current = row.version_id  # read now: the update expires the row
    previous = copy.deepcopy(service.store.vread(res_type, res_id, int(change["before"])))
    previous.pop("meta", None)
    written = service.store.update(res_type, res_id, previous, if_match=current)
    return Change(str(change["reference"]), current, written.version_id)


def undo(service: FhirService, item_id: int, actor: str) -> ReviewRow:
    """Reverse the decision in force: unlink, unmerge, or forget a not-link; the item reopens."""
    session = service.session
    item = _item(session, item_id)
    decision = last_decision(session, item_id)
    if item.status == "open" or decision is None:
        raise conflict(f"review item {item_id} has no decision to undo", rule="mpi-undo-decided")
    changes = [_restore(service, change) for change in decision.changes]
    decision.undone = True
    moment = now()
    session.add(
        DecisionRow(
            review_id=item.id,
            action="undo",
            actor=actor,
            at=moment,
            changes=[c.as_json() for c in changes],
            undone=False,
        )
    )
    item.status = "open"
    item.decided_by, item.decided_at, item.updated = actor, moment, moment
    _audit(service, item, f"undo-{decision.action}", changes)
    session.flush()
    return item


def decisions_of(session: Session, item_id: int) -> list[DecisionRow]:
    """The item's decision log, oldest first."""
    return list(
        session.scalars(
            select(DecisionRow).where(DecisionRow.review_id == item_id).order_by(DecisionRow.id)
        )
    )


__all__ = ["ACTIONS", "Change", "decide", "decisions_of", "last_decision", "undo"]
