"""Tables of the data steward's review queue.

``mpi_review`` holds one row per unordered pair of Patients (``patient_a`` < ``patient_b``), so
proposing the same pair again updates the row instead of adding a second one, and a "not the
same person" decision stays attached to the pair. ``mpi_review_decision`` is the log of every
decision with the resource versions it wrote, which is what an undo restores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JsonDocument


class ReviewRow(Base):
    __tablename__ = "mpi_review"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_a: Mapped[str] = mapped_column(String(64))
    patient_b: Mapped[str] = mapped_column(String(64))
    probability: Mapped[float] = mapped_column(Float)
    match_weight: Mapped[float] = mapped_column(Float)
    # [{"name", "level", "label", "weight"}, ...] in the model's comparison order
    comparisons: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    source: Mapped[str] = mapped_column(String(16))  # realtime | batch
    status: Mapped[str] = mapped_column(String(16))  # open | linked | not-linked | merged
    created: Mapped[datetime] = mapped_column(DateTime)  # naive UTC
    updated: Mapped[datetime] = mapped_column(DateTime)
    decided_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    __table_args__ = (
        UniqueConstraint("patient_a", "patient_b", name="uq_mpi_review_pair"),
        Index("ix_mpi_review_status_probability", "status", "probability"),
        Index("ix_mpi_review_patient_b", "patient_b"),
    )


class DecisionRow(Base):
    __tablename__ = "mpi_review_decision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("mpi_review.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))  # link | not-link | merge | undo
    actor: Mapped[str] = mapped_column(String(256))
    at: Mapped[datetime] = mapped_column(DateTime)
    # [{"reference": "Patient/x", "before": 3, "after": 4}, ...]: versions this decision wrote
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    undone: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_mpi_review_decision_review", "review_id", "id"),)
