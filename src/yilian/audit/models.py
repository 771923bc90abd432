"""The audit log's tables and typed records.

``audit_entry`` is append-only: one row per audited access, numbered by a gapless ``seq`` and
hash-chained (see docs/audit.md). ``audit_patient`` is a derived index of the patients each entry
touched, so "who looked at my record" is one indexed query on both databases (a JSON containment
index would need a different mechanism on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JsonDocument

SEQ = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntryRow(Base):
    """One link of the chain. ``seq`` is assigned by yilian.audit.chain, never by the database."""

    __tablename__ = "audit_entry"
    # The primary key on seq is the safety net of the chain: two appenders that somehow read the
    # same head cannot both commit the same seq.
    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    recorded: Mapped[datetime] = mapped_column(DateTime)  # naive UTC
    actor: Mapped[str] = mapped_column(String(256))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_role: Mapped[str | None] = mapped_column(String(128), nullable=True)
    action: Mapped[str] = mapped_column(String(1))
    event: Mapped[str] = mapped_column(String(32))
    resources: Mapped[list[str]] = mapped_column(JsonDocument)
    patients: Mapped[list[str]] = mapped_column(JsonDocument)
    purpose: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[int] = mapped_column(SmallInteger)
    outcome_desc: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_address: Mapped[str | None] = mapped_column(String(256), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    query: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_audit_entry_recorded", "recorded"),
        Index("ix_audit_entry_actor", "actor", "seq"),
    )


class AuditPatientRow(Base):
    """Patient ``Patient/<id>`` touched by entry ``seq`` (derived from ``audit_entry.patients``)."""

    __tablename__ = "audit_patient"
    patient: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(
        SEQ, ForeignKey("audit_entry.seq"), primary_key=True, autoincrement=False
    )
    __table_args__ = (Index("ix_audit_patient_seq", "seq"),)


@dataclass(frozen=True)
class AuditInput:
    """What the caller knows about one access; the chain adds seq, time and hashes.

    ``resources`` are ``Type/id`` or ``Type/id/_history/vid`` strings; ``patients`` are the
    ``Patient/id`` references whose data the access touched (for a search: the patients of the
    returned resources). ``purpose`` is a PurposeOfUse code of v3-ActReason (TREAT, HPAYMT, …).
    """

    actor: str
    event: str
    purpose: str
    resources: Sequence[str] = ()
    patients: Sequence[str] = ()
    actor_kind: str = "user"
    actor_role: str | None = None
    outcome: int = 0
    outcome_desc: str | None = None
    source_address: str | None = None
    request_id: str | None = None
    query: str | None = None
    recorded: datetime | None = None


@dataclass(frozen=True)
class AuditRecord:
    """A stored entry: every field that the hash covers, plus the hash itself."""

    seq: int
    recorded: datetime  # naive UTC, microsecond precision
    actor: str
    actor_kind: str
    actor_role: str | None
    action: str
    event: str
    resources: list[str]
    patients: list[str]
    purpose: str
    outcome: int
    outcome_desc: str | None
    source_address: str | None
    request_id: str | None
    query: str | None
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: AuditEntryRow) -> AuditRecord:
        return cls(**{name: getattr(row, name) for name in RECORD_FIELDS})


RECORD_FIELDS: tuple[str, ...] = (
    "seq",
    "recorded",
    "actor",
    "actor_kind",
    "actor_role",
    "action",
    "event",
    "resources",
    "patients",
    "purpose",
    "outcome",
    "outcome_desc",
    "source_address",
    "request_id",
    "query",
    "prev_hash",
    "hash",
)
