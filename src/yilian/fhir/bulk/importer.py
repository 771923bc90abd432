"""Bulk loading of files: walk the inputs, prepare chunks in worker processes, write batches.

Pipeline: the main process reads a chunk of lines and hands it to a worker (parse, validate,
stamp, extract index rows — ``prepare.py``). Each chunk is written in one transaction together
with the file's new position in ``bulk_file``, in the order of the input: on PostgreSQL by the
worker itself over its own connection (``direct.py``), on SQLite by the main process. So a crash
loses at most the chunks in flight, and re-running the same load continues after the last
committed chunk.

Bundles in ``.json`` files: ``transaction``/``batch`` Bundles go through ``BundleProcessor``
exactly as ``POST /fhir`` would (one transaction per transaction Bundle); ``collection`` and
``searchset`` Bundles are loaded entry by entry like NDJSON lines; any other JSON resource is
loaded as one resource.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

from yilian.db import unit_of_work
from yilian.fhir.bulk.direct import ChunkOutcome, ChunkTask, load_chunk, record_progress
from yilian.fhir.bulk.loader import BatchResult, BatchWriter
from yilian.fhir.bulk.models import BulkFileRow
from yilian.fhir.bulk.prepare import PreparedChunk, describe, prepare_chunk
from yilian.fhir.bulk.sources import (
    Chunk,
    find_inputs,
    fingerprint,
    input_kind,
    ndjson_chunks,
    read_document,
)
from yilian.fhir.bulk.turns import Turns, install
from yilian.fhir.bundle import BundleProcessor
from yilian.fhir.errors import FhirError, invalid
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.jsonutil import dumps


@dataclass
class LoadOptions:
    batch_size: int = 1000
    workers: int = 2  # 0: prepare in this process (small loads, tests)
    validate: bool = True
    strict: bool = False  # a rejected line stops the load (its batch is not written)
    restart: bool = False  # ignore recorded progress: load every file from its start again
    expected_types: dict[Path, str] = field(default_factory=dict)  # $import input[].type


@dataclass(frozen=True)
class LoadError:
    file: str
    line: int | None  # None: the whole file (e.g. a failed transaction Bundle)
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass
class LoadReport:
    files: int = 0
    skipped_files: list[str] = field(default_factory=list)  # already loaded by an earlier run
    loaded: int = 0
    updated: int = 0  # of the loaded, how many were new versions of existing ids
    rejected: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    errors: list[LoadError] = field(default_factory=list)
    bytes_total: int = 0
    bytes_done: int = 0
    # PostgreSQL: seconds the workers' chunks waited, rows written, for their commit turn (the
    # cores a load leaves idle: the benchmark reports it as a share of the workers' time)
    turn_wait: float = 0.0


class LoadAborted(Exception):
    """``--strict`` met a bad line, or the load was cancelled; committed batches stay."""


ProgressHook = Callable[[LoadReport], None]
BatchHook = Callable[[Path, int], None]  # after each committed batch: file, lines committed


class _Inline(Executor):
    """Prepare chunks in this process: no pool start-up for small loads and tests."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller by future.result()
            future.set_exception(exc)
        return future


def worker_pool(workers: int, turns: Turns | None = None) -> Executor:
    """Worker processes started by a fork server that has already imported the validator.

    ``forkserver`` rather than ``fork``: the API runs loads in a background thread, and forking a
    multi-threaded process is unsafe (https://docs.python.org/3/library/multiprocessing.html#contexts-and-start-methods).
    ``turns``: the commit order of workers that write their own chunks (``direct.py``).
    """
    if workers <= 0:
        return _Inline()
    context = _CONTEXT
    context.set_forkserver_preload(["yilian.fhir.bulk.prepare", "yilian.fhir.bulk.direct"])
    if turns is None:
        return ProcessPoolExecutor(max_workers=workers, mp_context=context)
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=install, initargs=(turns,)
    )


_CONTEXT = multiprocessing.get_context("forkserver")


@dataclass
class _File:
    path: Path
    display: str
    pk: int
    offset: int
    line: int
    size: int


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _entries(body: dict[str, Any]) -> list[Any]:
    entries = body.get("entry")
    return entries if isinstance(entries, list) else []


def _reject_get(url: str) -> tuple[str, dict[str, Any]]:
    raise invalid(f"GET entries are not run by bulk loads: {url}", rule="bulk-bundle-get")


class Loader:
    """One load of a list of files or directories."""

    def __init__(
        self,
        runtime: Runtime,
        ctx: RequestContext,
        options: LoadOptions | None = None,
        *,
        on_progress: ProgressHook | None = None,
        on_batch: BatchHook | None = None,
        cancelled: Callable[[], bool] | None = None,
        job_id: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.ctx = ctx
        self.options = options or LoadOptions()
        self.on_progress = on_progress
        self.on_batch = on_batch
        self.cancelled = cancelled or (lambda: False)
        self.job_id = job_id
        self.report = LoadReport()
        self._disk_before = 0  # bytes of files finished before the current one
        # PostgreSQL: chunks are written by whoever prepares them, in the input's commit order
        # (direct.py); SQLite (one writer at a time anyway): prepared by workers, written here.
        direct = runtime.engine.dialect.name == "postgresql"
        self._turns = Turns(_CONTEXT) if direct else None
        self._seq = 0  # number of the next chunk handed out

    def load(self, paths: list[Path]) -> LoadReport:
        files = find_inputs(paths)
        self.report.files = len(files)
        self.report.bytes_total = sum(p.stat().st_size for p in files)
        with worker_pool(self.options.workers, self._turns) as pool:
            for path in files:
                self._load_file(pool, path)
                self._disk_before += path.stat().st_size
                self.report.bytes_done = self._disk_before
                self._progress()
        if self.report.loaded:
            self._refresh_statistics()
        return self.report

    def _refresh_statistics(self) -> None:
        """ANALYZE once a load is done: a freshly bulk-loaded database has no planner statistics
        (SQLite none at all, PostgreSQL until autovacuum gets to it), and without them searches
        and page figures picked plans seconds slower (docs/benchmarks.md, docs/search.md)."""
        with self.runtime.engine.begin() as conn:
            conn.execute(text("ANALYZE"))

    # ------------------------------------------------------------------ files

    def _load_file(self, pool: Executor, path: Path) -> None:
        state = self._file_state(path)
        if state is None:
            self.report.skipped_files.append(str(path))
            return
        if input_kind(path) == "json":
            self._load_document(pool, state)
        else:
            chunks = ndjson_chunks(
                path, self.options.batch_size, offset=state.offset, line=state.line
            )
            self._pipeline(pool, state, chunks)
        self._finish(state)

    def _file_state(self, path: Path) -> _File | None:
        """The file's progress row (created on first sight); None when it was fully loaded."""
        mark = fingerprint(path)
        with unit_of_work(self.runtime.sessions) as session:
            row = session.execute(
                select(BulkFileRow).where(
                    BulkFileRow.path == str(path), BulkFileRow.fingerprint == mark
                )
            ).scalar_one_or_none()
            if row is None:
                row = BulkFileRow(
                    path=str(path),
                    fingerprint=mark,
                    offset=0,
                    line=0,
                    loaded=0,
                    rejected=0,
                    done=False,
                    job_id=self.job_id,
                    updated=_now(),
                )
                session.add(row)
                session.flush()
            elif self.options.restart:
                row.offset, row.line, row.loaded, row.rejected, row.done = 0, 0, 0, 0, False
            elif row.done:
                return None
            return _File(path, str(path), row.pk, row.offset, row.line, path.stat().st_size)

    def _finish(self, state: _File) -> None:
        with unit_of_work(self.runtime.sessions) as session:
            session.execute(
                update(BulkFileRow)
                .where(BulkFileRow.pk == state.pk)
                .values(done=True, updated=_now())
            )

    # ------------------------------------------------------------- NDJSON

    def _pipeline(self, pool: Executor, state: _File, chunks: Iterator[Chunk]) -> None:
        """Keep the workers busy while collecting ready chunks in order (bounded look-ahead)."""
        workers = self.options.workers
        depth = 2 * workers if workers > 0 else 0  # inline, a chunk is done when submitted
        pending: deque[tuple[Chunk, Future[Any]]] = deque()
        try:
            for chunk in chunks:
                pending.append((chunk, self._submit(pool, state, chunk)))
                if len(pending) > depth:
                    self._collect(state, *pending.popleft())
            while pending:
                self._collect(state, *pending.popleft())
        finally:
            if pending and self._turns is not None:
                self._turns.abort()  # chunks in flight roll back; cancelled ones never run
            for _chunk, future in pending:
                future.cancel()

    def _submit(self, pool: Executor, state: _File, chunk: Chunk) -> Future[Any]:
        expected = self.options.expected_types.get(state.path)
        if self._turns is None:
            copy_text = self.runtime.engine.dialect.name == "postgresql"  # see BatchWriter
            return pool.submit(
                prepare_chunk, chunk.lines, self.options.validate, expected, copy_text
            )
        task = ChunkTask(
            seq=self._seq,
            database_url=self.runtime.engine.url.render_as_string(hide_password=False),
            lines=chunk.lines,
            validate=self.options.validate,
            expected_type=expected,
            strict=self.options.strict,
            ctx=dataclasses.replace(self.ctx, guard=None),
            source=f"load {state.path}:{chunk.line}",
            file_pk=state.pk,
            offset=chunk.offset,
            line=chunk.line,
            job_id=self.job_id,
        )
        self._seq += 1
        if self.options.workers <= 0:
            return pool.submit(load_chunk, task, self._turns, self.runtime.sessions)
        return pool.submit(load_chunk, task)

    def _collect(self, state: _File, chunk: Chunk, future: Future[Any]) -> None:
        if self.cancelled():
            raise LoadAborted("the load was cancelled")
        done = future.result()
        rejected = done.rejected
        errors = [LoadError(state.display, r.line, r.message) for r in rejected]
        if errors and self.options.strict:
            self.report.errors.append(errors[0])
            self.report.rejected += 1
            raise LoadAborted(f"--strict: {errors[0]}")
        if isinstance(done, ChunkOutcome):
            if not done.written:
                raise LoadAborted("the load was stopped before this chunk committed")
            result = done.result
            self.report.turn_wait += done.waited
        else:
            result = self._write(state, chunk, done, len(errors))
        self._count(result, errors)
        self.report.bytes_done = self._disk_before + chunk.disk_position
        self._progress()
        if self.on_batch is not None:
            self.on_batch(state.path, chunk.line)

    def _write(
        self, state: _File, chunk: Chunk, prepared: PreparedChunk, rejected: int
    ) -> BatchResult:
        """A chunk prepared by a worker, written by this process (SQLite)."""
        source = f"load {state.path}:{chunk.line}"
        with unit_of_work(self.runtime.sessions) as session:
            result = BatchWriter(session, self.ctx, source=source).write(prepared.prepared)
            record_progress(
                session,
                state.pk,
                offset=chunk.offset,
                line=chunk.line,
                written=result.written,
                rejected=rejected,
                job_id=self.job_id,
            )
        return result

    def _count(self, result: BatchResult, errors: list[LoadError]) -> None:
        self.report.loaded += result.written
        self.report.updated += result.updated
        self.report.by_type.update(result.by_type)
        self.report.rejected += len(errors)
        self.report.errors.extend(errors)

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.report)

    # ------------------------------------------------------------ documents

    def _load_document(self, pool: Executor, state: _File) -> None:
        try:
            body = read_document(state.path)
        except (OSError, ValueError) as exc:
            self._file_failed(state, f"not a readable JSON document: {exc}", 1)
            return
        if not isinstance(body, dict):
            self._file_failed(state, "a JSON file must hold one FHIR resource or Bundle", 1)
            return
        kind = body.get("type") if body.get("resourceType") == "Bundle" else None
        if kind in ("transaction", "batch"):
            self._load_bundle(state, body, str(kind))
            return
        if kind in ("collection", "searchset"):
            entries = _entries(body)
            resources = [e.get("resource") if isinstance(e, dict) else None for e in entries]
        else:
            resources = [body]
        self._pipeline(pool, state, self._entry_chunks(state, resources))

    def _entry_chunks(self, state: _File, resources: list[Any]) -> Iterator[Chunk]:
        """Bundle entries as numbered "lines" (entry 1, 2, …), resuming after ``state.line``."""
        size = self.options.batch_size
        numbered = [(i + 1, dumps(r)) for i, r in enumerate(resources) if i >= state.line]
        for start in range(0, len(numbered), size):
            part = numbered[start : start + size]
            yield Chunk(part, 0, part[-1][0], state.size)

    def _load_bundle(self, state: _File, body: dict[str, Any], kind: str) -> None:
        entries = _entries(body)
        try:
            with self.runtime.transaction(self.ctx) as service:
                processor = BundleProcessor(service, _reject_get)
                if kind == "transaction":
                    response = processor.transaction(body)
                else:
                    response = processor.batch(body)
                result, errors = self._bundle_outcome(state, entries, response)
                service.session.execute(
                    update(BulkFileRow)
                    .where(BulkFileRow.pk == state.pk)
                    .values(
                        line=len(entries),
                        loaded=result.written,
                        rejected=len(errors),
                        job_id=self.job_id,
                        updated=_now(),
                    )
                )
        except FhirError as exc:
            self._file_failed(state, describe(exc), len(entries))
            return
        if errors and self.options.strict:
            self.report.errors.append(errors[0])
            raise LoadAborted(f"--strict: {errors[0]}")
        self._count(result, errors)

    def _bundle_outcome(
        self, state: _File, entries: list[Any], response: dict[str, Any]
    ) -> tuple[BatchResult, list[LoadError]]:
        result = BatchResult()
        errors: list[LoadError] = []
        for number, (sent, got) in enumerate(zip(entries, response["entry"], strict=True), 1):
            status = str(got.get("response", {}).get("status", ""))
            if status.startswith("2"):
                resource = sent.get("resource") if isinstance(sent, dict) else None
                if isinstance(resource, dict):
                    result.written += 1
                    result.by_type[str(resource.get("resourceType"))] += 1
            else:
                outcome = got.get("response", {}).get("outcome", {})
                texts = [i.get("diagnostics", "") for i in outcome.get("issue", [])]
                errors.append(LoadError(state.display, number, "; ".join(texts) or status))
        return result, errors

    def _file_failed(self, state: _File, message: str, count: int) -> None:
        """A whole file could not be loaded: report it and move on (or stop, when strict)."""
        error = LoadError(state.display, None, message)
        self.report.errors.append(error)
        self.report.rejected += count
        if self.options.strict:
            raise LoadAborted(f"--strict: {error}")
        with unit_of_work(self.runtime.sessions) as session:
            session.execute(
                update(BulkFileRow)
                .where(BulkFileRow.pk == state.pk)
                .values(rejected=count, job_id=self.job_id, updated=_now())
            )
