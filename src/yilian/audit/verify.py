"""Walking the audit chain and naming the first entry that is not as it was written.

The walk streams entries in ``seq`` order in keyset-paginated batches (bounded memory), and for
each entry checks (docs/audit.md "Verification"):

1. ``seq`` is the next number (a gap means entries were deleted);
2. the stored hash equals SHA-256 of the entry's canonical serialisation (else it was edited);
3. ``prev_hash`` equals the previous entry's hash (else the chain was cut, reordered or spliced).

When a check fails, a few look-ups (only then) tell the kinds of tampering apart, so the report
says *what* happened to *which* entry, not only that something is wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from yilian.audit.canonical import GENESIS_HASH, HASHED_FIELDS, entry_hash
from yilian.audit.models import AuditEntryRow
from yilian.db import Base

# Core columns of the table, not ORM attributes: plain rows skip the ORM's per-row loading.
_TABLE = Base.metadata.tables[AuditEntryRow.__tablename__]
_NAMES = (*HASHED_FIELDS, "hash")
_COLUMNS = [_TABLE.c[name] for name in _NAMES]
_seq_column = _TABLE.c.seq


class Problem(StrEnum):
    MODIFIED = "modified"  # an entry's contents differ from what was hashed
    DELETED = "deleted"  # an entry is missing (a gap, or later entries renumbered)
    INSERTED = "inserted"  # an entry that was never appended sits in the chain
    REORDERED = "reordered"  # an entry sits at another place than where it was appended
    BROKEN = "broken"  # contents and link both wrong in a way the checks cannot classify
    ANCHOR = "anchor"  # the chain disagrees with an externally kept (seq, hash)


@dataclass(frozen=True)
class Anchor:
    """A (seq, hash) kept outside the database, e.g. published daily from ``yilian audit head``.

    Without one, whoever can write the database can rewrite the *tail* of the chain and re-hash
    it consistently; an anchor pins everything up to its seq.
    """

    seq: int
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    first_bad_seq: int | None
    problem: Problem | None
    detail: str | None
    head_seq: int
    seconds: float

    @property
    def entries_per_second(self) -> float:
        return self.checked / self.seconds if self.seconds > 0 else float(self.checked)


def verify(
    session: Session,
    *,
    start: int = 1,
    end: int | None = None,
    batch: int = 5000,
    anchor: Anchor | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check entries ``start``..``end`` (default: to the head); entries before start are trusted.

    ``progress`` is called with the number of entries checked after each batch. Verifying in
    windows (``start``/``end``), each in its own short transaction, keeps a long verification
    from holding SQLite's write lock (yilian begins every SQLite transaction IMMEDIATE).
    """
    began = time.perf_counter()
    report = _walk(session, start, end, batch, progress)
    if report.ok and anchor is not None:
        report = _check_anchor(session, report, anchor)
    return replace(report, seconds=time.perf_counter() - began)


def _walk(
    session: Session,
    start: int,
    end: int | None,
    batch: int,
    progress: Callable[[int], None] | None,
) -> VerifyReport:
    expected_seq, expected_prev = _starting_point(session, start)
    checked = 0
    while True:
        query = select(*_COLUMNS).where(_seq_column >= expected_seq)
        if end is not None:
            query = query.where(_seq_column <= end)
        rows = session.execute(query.order_by(_seq_column).limit(batch)).all()
        if not rows:
            return _good(checked, expected_seq - 1)
        for row in rows:
            problem = _check(session, row, expected_seq, expected_prev)
            if problem is not None:
                bad_seq, kind, detail = problem
                return VerifyReport(False, checked, bad_seq, kind, detail, expected_seq - 1, 0.0)
            checked += 1
            expected_seq += 1
            expected_prev = row.hash
        if progress is not None:
            progress(len(rows))


def _good(checked: int, head: int) -> VerifyReport:
    return VerifyReport(True, checked, None, None, None, head, 0.0)


def _starting_point(session: Session, start: int) -> tuple[int, str]:
    if start <= 1:
        return 1, GENESIS_HASH
    before = session.execute(
        select(AuditEntryRow.hash).where(AuditEntryRow.seq == start - 1)
    ).scalar_one_or_none()
    # A missing predecessor is not hidden: walking from it makes the gap the first finding.
    return (start, before) if before is not None else (start - 1, GENESIS_HASH)


Finding = tuple[int, Problem, str]


def _check(session: Session, row: Row[tuple[object, ...]], seq: int, prev: str) -> Finding | None:
    fields: dict[str, object] = dict(zip(_NAMES, row, strict=True))
    if row.seq != seq:
        return seq, Problem.DELETED, f"entries {seq}..{row.seq - 1} are missing (seq gap)"
    content_ok = entry_hash(fields) == row.hash
    link_ok = row.prev_hash == prev
    if content_ok and link_ok:
        return None
    if not content_ok and link_ok:
        return seq, Problem.MODIFIED, f"entry {seq}: contents do not match its hash (edited)"
    return _diagnose(session, fields, seq, content_ok)


def _diagnose(session: Session, fields: dict[str, object], seq: int, content_ok: bool) -> Finding:
    """Classify an entry whose link to its predecessor is broken."""
    stored = str(fields["hash"])
    if entry_hash({**fields, "seq": seq - 1}) == stored:
        return (
            seq - 1,
            Problem.INSERTED,
            f"entry {seq - 1} was not appended to the chain: the entry now numbered {seq} "
            f"was written as {seq - 1}, so later entries were shifted up to make room",
        )
    misplaced = _misplaced(session, fields, seq)
    if misplaced is not None:
        return seq, Problem.REORDERED, misplaced
    if entry_hash({**fields, "seq": seq + 1}) == stored:
        return (
            seq,
            Problem.DELETED,
            f"entry {seq} was deleted and later entries renumbered down "
            f"(the entry now numbered {seq} was written as {seq + 1})",
        )
    if content_ok:
        return (
            seq - 1,
            Problem.MODIFIED,
            f"entry {seq - 1} was changed and re-hashed: entry {seq} records a different "
            f"hash for its predecessor (prev_hash {str(fields['prev_hash'])[:12]}…)",
        )
    return (
        seq,
        Problem.BROKEN,
        f"entry {seq}: neither its contents nor its prev_hash match (replaced or forged)",
    )


def _misplaced(session: Session, fields: dict[str, object], seq: int) -> str | None:
    """Say where the entry at ``seq`` really belongs, if its neighbours elsewhere reveal it."""
    pred = session.execute(
        select(AuditEntryRow.seq).where(AuditEntryRow.hash == fields["prev_hash"]).limit(1)
    ).scalar_one_or_none()
    if pred is not None and pred != seq - 1:
        return f"entry {seq} was appended after entry now numbered {pred}, not after {seq - 1}"
    succ = session.execute(
        select(AuditEntryRow.seq)
        .where(AuditEntryRow.prev_hash == fields["hash"], AuditEntryRow.seq != seq)
        .limit(1)
    ).scalar_one_or_none()
    if succ is not None and succ != seq + 1:
        return f"entry {seq} was appended before entry now numbered {succ}, not before {seq + 1}"
    return None


def _check_anchor(session: Session, report: VerifyReport, anchor: Anchor) -> VerifyReport:
    stored = session.execute(
        select(AuditEntryRow.hash).where(AuditEntryRow.seq == anchor.seq)
    ).scalar_one_or_none()
    if stored is None:
        detail = f"anchor seq {anchor.seq} is beyond the chain head {report.head_seq}: tail deleted"
        return replace(
            report,
            ok=False,
            first_bad_seq=report.head_seq + 1,
            problem=Problem.DELETED,
            detail=detail,
        )
    if stored != anchor.hash:
        detail = (
            f"entry {anchor.seq} has hash {stored[:12]}…, the anchor says {anchor.hash[:12]}…: "
            "the chain up to it was rewritten and re-hashed"
        )
        return replace(
            report, ok=False, first_bad_seq=anchor.seq, problem=Problem.ANCHOR, detail=detail
        )
    return report
