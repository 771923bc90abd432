"""Proposing candidate pairs to the steward and listing them.

A pair is stored once, in a fixed order, whoever proposes it and however often: the real-time
match proposes it again on every update of either Patient, the batch job on every run. A fresh
proposal of an open pair refreshes its evidence; a decided pair keeps its decision — a steward's
"not the same person" is not asked again, and a linked or merged pair is not reopened.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yilian.mpi.review.models import ReviewRow

Source = Literal["realtime", "batch"]
SOURCES: tuple[str, ...] = ("realtime", "batch")
STATUSES: tuple[str, ...] = ("open", "linked", "not-linked", "merged")
ID_MAX_LENGTH = 64  # fhir_resource.res_id


class ReviewError(ValueError):
    """Bad input to the queue or a decision that does not apply; the message names the rule."""

    def __init__(self, message: str, *, field: str, rule: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


@dataclass(frozen=True)
class ComparisonEvidence:
    """One comparison of the pair: which level it fell in and that level's match weight (bits)."""

    name: str
    level: int  # 0 = a value is missing
    label: str
    weight: float

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "level": self.level, "label": self.label, "weight": self.weight}


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ordered_pair(first: str, second: str) -> tuple[str, str]:
    """The pair's stored order; raises on an empty, over-long or self pair."""
    for field, value in (("patient_a", first), ("patient_b", second)):
        if not isinstance(value, str) or not value or len(value) > ID_MAX_LENGTH:
            raise ReviewError(
                f"{field} must be a Patient id of 1-{ID_MAX_LENGTH} characters, got {value!r}",
                field=field,
                rule="patient-id",
            )
    if first == second:
        raise ReviewError(
            f"a Patient cannot be paired with itself ({first})", field="patient_b", rule="distinct"
        )
    return (first, second) if first < second else (second, first)


def _check_evidence(probability: float, match_weight: float, source: str) -> None:
    if not (isinstance(probability, float | int) and 0.0 <= probability <= 1.0):
        raise ReviewError(
            f"match probability must be within 0..1, got {probability!r}",
            field="probability",
            rule="probability-range",
        )
    if not (isinstance(match_weight, float | int) and math.isfinite(match_weight)):
        raise ReviewError(
            f"match weight must be a finite number, got {match_weight!r}",
            field="match_weight",
            rule="finite-weight",
        )
    if source not in SOURCES:
        raise ReviewError(
            f"source must be one of {', '.join(SOURCES)}, got {source!r}",
            field="source",
            rule="source-code",
        )


def enqueue_candidate(
    session: Session,
    patient_a: str,
    patient_b: str,
    *,
    probability: float,
    match_weight: float,
    comparisons: Sequence[ComparisonEvidence],
    source: Source,
) -> ReviewRow:
    """Propose a pair for review (idempotent: the same pair again is the same row).

    Runs in the caller's transaction (a Patient write, or the batch import), so a rolled-back
    write proposes nothing. Returns the row; its ``status`` tells whether it is still open.
    """
    first, second = ordered_pair(patient_a, patient_b)
    _check_evidence(probability, match_weight, source)
    evidence = [c.as_json() for c in comparisons]
    moment = now()
    row = _locked_pair(session, first, second)
    if row is None:
        row = ReviewRow(
            patient_a=first,
            patient_b=second,
            probability=float(probability),
            match_weight=float(match_weight),
            comparisons=evidence,
            source=source,
            status="open",
            created=moment,
            updated=moment,
        )
        try:  # two requests may propose a new pair at once: the loser updates the winner's row
            with session.begin_nested():
                session.add(row)
                session.flush()
            return row
        except IntegrityError:
            row = _locked_pair(session, first, second)
            assert row is not None  # the unique pair that was just inserted by the other
    if row.status == "open":
        row.probability = float(probability)
        row.match_weight = float(match_weight)
        row.comparisons = evidence
        row.source = source
        row.updated = moment
        session.flush()
    return row


def _locked_pair(session: Session, first: str, second: str) -> ReviewRow | None:
    return session.scalars(
        select(ReviewRow)
        .where(ReviewRow.patient_a == first, ReviewRow.patient_b == second)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def get_item(session: Session, item_id: int, *, for_update: bool = False) -> ReviewRow:
    query = select(ReviewRow).where(ReviewRow.id == item_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise ReviewError(f"review item {item_id} does not exist", field="id", rule="exists")
    return row


def find_pair(session: Session, first: str, second: str) -> ReviewRow | None:
    """The item of a pair (either order), if the pair was ever proposed."""
    a, b = ordered_pair(first, second)
    return session.scalars(
        select(ReviewRow).where(ReviewRow.patient_a == a, ReviewRow.patient_b == b)
    ).one_or_none()


Order = Literal["probability", "age"]


def _filtered(status: str | None, patient: str | None) -> Select[ReviewRow]:
    query = select(ReviewRow)
    if status is not None:
        if status not in STATUSES:
            raise ReviewError(
                f"status must be one of {', '.join(STATUSES)}, got {status!r}",
                field="status",
                rule="status-code",
            )
        query = query.where(ReviewRow.status == status)
    if patient is not None:
        query = query.where(or_(ReviewRow.patient_a == patient, ReviewRow.patient_b == patient))
    return query


def list_items(
    session: Session,
    *,
    status: str | None = "open",
    patient: str | None = None,
    order: Order = "probability",
    limit: int = 50,
    offset: int = 0,
) -> list[ReviewRow]:
    """Queue items, most likely first (``probability``) or oldest first (``age``)."""
    query = _filtered(status, patient)
    if order == "probability":
        query = query.order_by(ReviewRow.probability.desc(), ReviewRow.id)
    elif order == "age":
        query = query.order_by(ReviewRow.created, ReviewRow.id)
    else:
        raise ReviewError(
            f"order must be probability or age, got {order!r}", field="order", rule="order-code"
        )
    return list(session.scalars(query.limit(limit).offset(offset)))


def count_items(session: Session, *, status: str | None = "open") -> int:
    query = _filtered(status, None).with_only_columns(func.count())
    return int(session.scalar(query) or 0)
