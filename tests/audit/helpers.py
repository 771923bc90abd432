"""Small builders shared by the audit tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from yilian.audit import AuditInput, AuditRecord, append_batch
from yilian.audit.models import AuditEntryRow
from yilian.db import session_factory, unit_of_work


def an_input(n: int = 0, **overrides: Any) -> AuditInput:
    fields: dict[str, Any] = {
        "actor": f"Practitioner/doc-{n % 3}",
        "actor_role": "family doctor",
        "event": "read",
        "purpose": "TREAT",
        "resources": [f"Observation/obs-{n}/_history/1"],
        "patients": [f"Patient/p-{n % 5}"],
        "source_address": "10.0.0.7",
        "request_id": f"req-{n}",
    }
    fields.update(overrides)
    return AuditInput(**fields)


def fill(engine: Engine, count: int) -> list[AuditRecord]:
    with unit_of_work(session_factory(engine)) as session:
        return append_batch(session, [an_input(i) for i in range(count)])


def all_rows(factory: sessionmaker[Session]) -> list[AuditRecord]:
    with factory() as session:
        rows = session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq)).all()
        return [AuditRecord.from_row(r) for r in rows]


def sql(engine: Engine, statement: str, **params: Any) -> None:
    """Tamper with the table directly, as someone with database access would."""
    with engine.begin() as conn:
        conn.execute(text(statement), params)
