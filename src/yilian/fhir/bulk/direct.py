"""PostgreSQL bulk loads: each worker prepares a chunk and writes it over its own connection.

Relaying every prepared row through the main process cost as much CPU as the rows' COPY text
itself and kept one database backend busy at a time (ADR 0010). Here a worker parses, validates
and indexes its chunk (``prepare.py``), writes the resource, history and index rows by COPY in
its own transaction — in parallel with the other worker's chunk — and then, in the order of the
input (``turns.py``), appends the chunk's audit entry, records the file position and commits.

Two chunks in flight can touch the same resource (an id repeated in the input): one then waits
for the other's row or unique-index entry. A chunk's first attempt waits for a lock at most
``LOCK_TIMEOUT``; then it rolls back, waits for its turn (every earlier chunk committed) and
writes again, after telling later chunks that it is blocked: a later chunk that holds rows while
it waits for its own turn then rolls back and retries in its turn as well. A unique violation or
a deadlock PostgreSQL breaks is retried the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Engine, text, update
from sqlalchemy.orm import Session, sessionmaker

from yilian.db import make_engine, session_factory
from yilian.fhir.bulk.loader import BatchResult, BatchWriter
from yilian.fhir.bulk.models import BulkFileRow
from yilian.fhir.bulk.prepare import PreparedChunk, Rejected, prepare_chunk
from yilian.fhir.bulk.turns import Turns, Yield, installed
from yilian.fhir.runtime import RequestContext

# Outside its turn: chunks of one load take ~0.1-1 s each, so a longer wait for a lock means
# another chunk (or a long API transaction) holds it; in its turn a chunk waits as long as it takes.
LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '2s'")
# In turn only other clients can hold the audit chain's lock or the file's progress row (later
# chunks take them in their own turn): wait as long as that takes.
NO_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = 0")
# A chunk's commit does not wait for its WAL to reach the disk
# (https://www.postgresql.org/docs/current/wal-async-commit.html): a crash can lose only the last
# commits, each whole (rows, audit entry and file position together), and a re-run loads those
# chunks again. The load's final step (``Loader._finish``, marking the file done) commits
# synchronously, which flushes every earlier commit first: a finished load is durable (ADR 0017).
ASYNC_COMMIT = text("SET LOCAL synchronous_commit = off")
# Conflicts with a concurrent chunk of the same load, settled by writing again in turn.
_RETRIED = (
    psycopg.errors.LockNotAvailable,
    psycopg.errors.UniqueViolation,
    psycopg.errors.DeadlockDetected,
)
# In its turn a chunk can still meet a later chunk's locks until that one yields (or PostgreSQL
# breaks a deadlock between them by failing either one), so a few attempts, not one.
RETRIES = 5


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of one input file, as the main process hands it to a worker."""

    seq: int  # position in the load: chunks commit in this order
    database_url: str
    lines: list[tuple[int, bytes]]
    validate: bool
    expected_type: str | None
    strict: bool
    ctx: RequestContext  # without its guard: bulk writes are authorised when the load starts
    source: str  # what the audit entry names, e.g. "load FILE:LINE"
    file_pk: int
    offset: int  # the file position after this chunk
    line: int  # the number of the chunk's last line
    job_id: str | None


@dataclass
class ChunkOutcome:
    result: BatchResult = field(default_factory=BatchResult)
    rejected: list[Rejected] = field(default_factory=list)
    written: bool = False  # False: nothing committed (strict stop, or an earlier chunk stopped)
    waited: float = 0.0  # seconds spent waiting for its commit turn with its rows written


def record_progress(
    session: Session,
    file_pk: int,
    *,
    offset: int,
    line: int,
    written: int,
    rejected: int,
    job_id: str | None,
) -> None:
    """The file's position after a chunk, in the chunk's own transaction."""
    session.execute(
        update(BulkFileRow)
        .where(BulkFileRow.pk == file_pk)
        .values(
            offset=offset,
            line=line,
            loaded=BulkFileRow.loaded + written,
            rejected=BulkFileRow.rejected + rejected,
            job_id=job_id,
            updated=datetime.now(UTC).replace(tzinfo=None),
        )
    )


_engines: dict[str, Engine] = {}


def _sessions(url: str) -> sessionmaker[Session]:
    """One engine per worker process and database, kept for the process's later chunks."""
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url, pool_size=1, max_overflow=0)
    return session_factory(engine)


def load_chunk(
    task: ChunkTask,
    turns: Turns | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> ChunkOutcome:
    """Prepare, write and (in turn) commit one chunk. In a worker process ``turns`` and
    ``sessions`` come from the pool's initializer and the task; the main process passes its own
    when it loads without workers."""
    turns = turns or installed()
    try:
        chunk = prepare_chunk(task.lines, task.validate, task.expected_type, copy_text=True)
        return _write(task, chunk, turns, sessions or _sessions(task.database_url))
    except BaseException:
        turns.wait(task.seq)
        turns.abort()  # a failed chunk stops the load, as when the main process wrote
        raise
    finally:
        turns.done(task.seq)


def _write(
    task: ChunkTask, chunk: PreparedChunk, turns: Turns, sessions: sessionmaker[Session]
) -> ChunkOutcome:
    outcome = ChunkOutcome(rejected=chunk.rejected)
    if task.strict and chunk.rejected:
        turns.wait(task.seq)
        turns.abort()
        return outcome
    in_turn = False
    for attempt in range(1, RETRIES + 1):
        session = sessions()
        try:
            session.execute(ASYNC_COMMIT)
            if not in_turn:  # in turn, a lock is held by a later chunk (which yields) or a client
                session.execute(LOCK_TIMEOUT)
            writer = BatchWriter(session, task.ctx, source=task.source)
            outcome.result = writer.write_rows(chunk.prepared)
            if not in_turn:
                started = time.perf_counter()
                try:
                    turns.wait(task.seq, holding_locks=True)
                finally:
                    outcome.waited += time.perf_counter() - started
                session.execute(NO_LOCK_TIMEOUT)
            if turns.aborted:
                session.rollback()
                return outcome
            writer.write_audit(outcome.result, chunk.prepared)
            record_progress(
                session,
                task.file_pk,
                offset=task.offset,
                line=task.line,
                written=outcome.result.written,
                rejected=len(chunk.rejected),
                job_id=task.job_id,
            )
            session.commit()
            outcome.written = True
            return outcome
        except Exception as exc:
            session.rollback()
            if attempt == RETRIES or not _conflict(exc):
                raise
            if _cause(exc, psycopg.errors.LockNotAvailable):
                turns.blocked(task.seq)
            turns.wait(task.seq)
            # In turn, only a later chunk (or another client) can hold what this one needs:
            # later chunks waiting for their turn with their rows written give them up.
            turns.blocked(task.seq)
            in_turn = True
        finally:
            session.close()
    raise AssertionError("unreachable: the last attempt returns or raises")


def _conflict(exc: BaseException) -> bool:
    return isinstance(exc, Yield) or _cause(exc, _RETRIED)


def _cause(exc: BaseException, kinds: type[Exception] | tuple[type[Exception], ...]) -> bool:
    """The driver's error, raised directly (COPY) or wrapped by SQLAlchemy (``orig``)."""
    cause: Any = getattr(exc, "orig", None) or exc
    return isinstance(cause, kinds)
