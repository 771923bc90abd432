"""Asynchronous bulk jobs: the ``bulk_job`` row is the state, a daemon thread does the work.

The FHIR Async Request Pattern (http://hl7.org/fhir/R4/async.html, used by Bulk Data
https://hl7.org/fhir/uv/bulkdata/export.html#bulk-data-kick-off-request): kick-off answers 202
with a status URL at once; the status URL answers 202 + ``X-Progress`` while the job runs and 200
with the result when it is done; ``DELETE`` on it cancels the job and removes its files. A job
checks for cancellation between batches, so cancelling never leaves a half-written batch.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, update

from yilian.config import load_settings
from yilian.db import unit_of_work
from yilian.fhir.bulk.models import BulkJobRow
from yilian.fhir.runtime import Runtime

log = logging.getLogger(__name__)

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "queued",
    "running",
    "completed",
    "failed",
    "cancelled",
)
JOB_KINDS = ("import", "export")


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def job_dir(kind: str, job_id: str) -> Path:
    """Where a job's files live: ``<data_dir>/exports/<job>`` or ``<data_dir>/imports/<job>``."""
    return load_settings().data_dir / f"{kind}s" / job_id


def create_job(runtime: Runtime, kind: str, request: dict[str, Any]) -> BulkJobRow:
    moment = now()
    row = BulkJobRow(
        id=str(uuid.uuid4()),
        kind=kind,
        status=QUEUED,
        request=request,
        transaction_time=moment,
        progress="queued",
        result=None,
        error=None,
        created=moment,
        updated=moment,
    )
    with unit_of_work(runtime.sessions) as session:
        session.add(row)
    return row


def get_job(runtime: Runtime, job_id: str) -> BulkJobRow | None:
    with unit_of_work(runtime.sessions) as session:
        return session.get(BulkJobRow, job_id)


def _set(runtime: Runtime, job_id: str, *, only_active: bool = True, **values: Any) -> bool:
    """Change a job unless it was cancelled meanwhile; True when the row was changed."""
    statement = update(BulkJobRow).where(BulkJobRow.id == job_id)
    if only_active:
        statement = statement.where(BulkJobRow.status.in_((QUEUED, RUNNING)))
    with unit_of_work(runtime.sessions) as session:
        result = cast(CursorResult[Any], session.execute(statement.values(updated=now(), **values)))
        changed = result.rowcount
    return bool(changed)


def set_progress(runtime: Runtime, job_id: str, text: str) -> None:
    _set(runtime, job_id, status=RUNNING, progress=text[:500])


def is_cancelled(runtime: Runtime, job_id: str) -> bool:
    job = get_job(runtime, job_id)
    return job is None or job.status == CANCELLED


def cancel(runtime: Runtime, job_id: str) -> bool:
    """Cancel (or, when finished, forget) a job and delete its files; False if unknown."""
    job = get_job(runtime, job_id)
    if job is None or job.status == CANCELLED:
        return False
    _set(runtime, job_id, only_active=False, status=CANCELLED, progress="cancelled")
    shutil.rmtree(job_dir(job.kind, job_id), ignore_errors=True)
    return True


class JobCancelled(Exception):
    """Raised inside a job when its status URL was deleted."""


def start(runtime: Runtime, job: BulkJobRow, work: Callable[[], dict[str, Any]]) -> None:
    """Run ``work`` in a daemon thread; its return value becomes the job's result."""

    def run() -> None:
        try:
            set_progress(runtime, job.id, "started")
            result = work()
        except JobCancelled:
            shutil.rmtree(job_dir(job.kind, job.id), ignore_errors=True)
            return
        except Exception as exc:  # the job fails; the status URL reports it as OperationOutcome
            log.exception("bulk %s job %s failed", job.kind, job.id)
            _set(runtime, job.id, status=FAILED, error=f"{type(exc).__name__}: {exc}")
            return
        if not _set(runtime, job.id, status=COMPLETED, progress="completed", result=result):
            shutil.rmtree(job_dir(job.kind, job.id), ignore_errors=True)  # cancelled at the end

    threading.Thread(target=run, name=f"bulk-{job.kind}-{job.id}", daemon=True).start()
