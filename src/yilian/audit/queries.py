"""Reading the audit log: the newest entries, and who accessed one patient's record.

Reading the audit log is itself not audited here: the caller (an API route showing a resident
"who looked at my record") decides whether that view is an access worth recording.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from yilian.audit.models import AuditEntryRow, AuditPatientRow, AuditRecord


def latest(session: Session, count: int) -> list[AuditRecord]:
    """The ``count`` newest entries, oldest first."""
    rows = session.scalars(
        select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(count)
    ).all()
    return [AuditRecord.from_row(row) for row in reversed(rows)]


def accesses_to_patient(
    session: Session, patient: str, *, limit: int = 100, before_seq: int | None = None
) -> list[AuditRecord]:
    """Entries that touched ``Patient/<id>``, newest first; page with ``before_seq``."""
    query = (
        select(AuditEntryRow)
        .join(AuditPatientRow, AuditPatientRow.seq == AuditEntryRow.seq)
        .where(AuditPatientRow.patient == patient)
        .order_by(AuditEntryRow.seq.desc())
        .limit(limit)
    )
    if before_seq is not None:
        query = query.where(AuditPatientRow.seq < before_seq)
    return [AuditRecord.from_row(row) for row in session.scalars(query).all()]
