"""Appending to the hash-chained audit log inside the caller's transaction.

The caller (the FHIR store, an import job) owns the transaction: ``append`` only inserts and
never commits, so the entry becomes visible exactly when the audited write does, and vanishes
with it on rollback.

Concurrency (docs/audit.md "Concurrent appenders"): appenders must read the chain head and insert
``seq + 1`` with nobody else in between.

- PostgreSQL: ``pg_advisory_xact_lock`` on one fixed key serialises appenders until their
  transactions end; the head is read *after* the lock is granted, and under READ COMMITTED each
  statement sees everything committed before it, so the head is the latest committed entry.
  https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
- SQLite: yilian.db starts every transaction with ``BEGIN IMMEDIATE``, which takes the database
  write lock up front, so writers are already serialised; the head is read inside it.
  https://www.sqlite.org/lang_transaction.html

The primary key on ``seq`` is the safety net: if an appender ever read a stale head (e.g. a
caller running at REPEATABLE READ), its insert fails instead of forking the chain.

Appenders hold the chain lock until they commit, so callers should append last, just before
their commit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yilian.audit.canonical import GENESIS_HASH, entry_hash, to_naive_utc
from yilian.audit.codes import (
    ACTION_OF_EVENT,
    ACTOR_KINDS,
    AuditEventKind,
    AuditOutcome,
    purposes_of_use,
)
from yilian.audit.models import AuditEntryRow, AuditInput, AuditPatientRow, AuditRecord
from yilian.db import Base

# One advisory-lock key for the whole chain, derived from its name so that it cannot collide by
# accident with keys other modules derive from theirs (PostgreSQL keys are signed 64-bit).
CHAIN_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"yilian.audit.chain").digest()[:8], "big", signed=True
)

# FHIR R4 id: [A-Za-z0-9\-\.]{1,64} (http://hl7.org/fhir/R4/datatypes.html#id); resource
# types are the capitalised names of R4 resources.
_ID = r"[A-Za-z0-9\-.]{1,64}"
_RESOURCE_REF = re.compile(rf"^[A-Z][A-Za-z]{{1,63}}/{_ID}(/_history/{_ID})?$")
_PATIENT_REF = re.compile(rf"^Patient/{_ID}$")
_EVENTS = frozenset(kind.value for kind in AuditEventKind)
_ENTRY_TABLE = Base.metadata.tables[AuditEntryRow.__tablename__]
_PATIENT_TABLE = Base.metadata.tables[AuditPatientRow.__tablename__]


class AuditInputError(ValueError):
    """An AuditInput that cannot be recorded; the message names the field and the rule."""


def append(session: Session, entry: AuditInput) -> AuditRecord:
    """Append one entry to the chain in ``session``'s transaction (flushed, not committed)."""
    return append_batch(session, [entry])[0]


def append_batch(session: Session, entries: Sequence[AuditInput]) -> list[AuditRecord]:
    """Append many entries under one lock and one multi-row insert (bulk import, transactions)."""
    for position, entry in enumerate(entries):
        _validate(entry, position)
    if not entries:
        return []
    _lock_chain(session)
    seq, prev_hash = chain_head(session)
    now = datetime.now(UTC).replace(tzinfo=None)
    records: list[AuditRecord] = []
    for entry in entries:
        seq += 1
        record = _seal(entry, seq, prev_hash, now)
        records.append(record)
        prev_hash = record.hash
    # Core inserts (one executemany each): the ORM bulk path costs more than the hashing.
    session.execute(_ENTRY_TABLE.insert(), [_row_values(r) for r in records])
    links = [{"patient": p, "seq": r.seq} for r in records for p in r.patients]
    if links:
        session.execute(_PATIENT_TABLE.insert(), links)
    return records


def chain_head(session: Session) -> tuple[int, str]:
    """(seq, hash) of the newest entry, or (0, 64 zeros) for an empty chain."""
    row = session.execute(
        select(AuditEntryRow.seq, AuditEntryRow.hash).order_by(AuditEntryRow.seq.desc()).limit(1)
    ).first()
    return (0, GENESIS_HASH) if row is None else (int(row.seq), str(row.hash))


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK_KEY)))


def _seal(entry: AuditInput, seq: int, prev_hash: str, now: datetime) -> AuditRecord:
    draft = AuditRecord(
        seq=seq,
        recorded=now if entry.recorded is None else to_naive_utc(entry.recorded),
        actor=entry.actor,
        actor_kind=entry.actor_kind,
        actor_role=entry.actor_role,
        action=ACTION_OF_EVENT[AuditEventKind(entry.event)],
        event=entry.event,
        resources=list(entry.resources),
        patients=list(dict.fromkeys(entry.patients)),  # one link per patient, order kept
        purpose=entry.purpose,
        outcome=entry.outcome,
        outcome_desc=entry.outcome_desc,
        source_address=entry.source_address,
        request_id=entry.request_id,
        query=entry.query,
        prev_hash=prev_hash,
        hash="",  # sealed below: the hash covers every other field
    )
    return replace(draft, hash=entry_hash(draft.__dict__))


def _row_values(record: AuditRecord) -> dict[str, object]:
    return dict(record.__dict__)


def _validate(entry: AuditInput, position: int) -> None:
    def fail(field: str, rule: str) -> None:
        raise AuditInputError(f"audit entry {position}: {field}: {rule}")

    if not entry.actor or len(entry.actor) > 256:
        fail("actor", "required, at most 256 characters")
    for name, limit in (("actor_role", 128), ("source_address", 256), ("request_id", 128)):
        value = getattr(entry, name)
        if value is not None and len(value) > limit:
            fail(name, f"at most {limit} characters")
    if entry.actor_kind not in ACTOR_KINDS:
        fail("actor_kind", f"must be one of {sorted(ACTOR_KINDS)}, got {entry.actor_kind!r}")
    if entry.event not in _EVENTS:
        fail("event", f"must be one of {[k.value for k in AuditEventKind]}, got {entry.event!r}")
    if entry.purpose not in purposes_of_use():
        fail(
            "purpose",
            f"{entry.purpose!r} is not a PurposeOfUse code of "
            "http://terminology.hl7.org/CodeSystem/v3-ActReason (e.g. TREAT, HPAYMT, PUBHLTH)",
        )
    if entry.outcome not in AuditOutcome.ALL:
        fail("outcome", f"must be 0, 4, 8 or 12 (FHIR AuditEvent.outcome), got {entry.outcome!r}")
    for ref in entry.resources:
        if not _RESOURCE_REF.match(ref):
            fail("resources", f"{ref!r} is not Type/id or Type/id/_history/vid")
    for ref in entry.patients:
        if not _PATIENT_REF.match(ref):
            fail("patients", f"{ref!r} is not Patient/id")
