"""Audit chain throughput: appends/s (one per transaction, and batched) and verify entries/s.

Runs on a fresh SQLite file and a scratch PostgreSQL database (dropped afterwards)::

    .venv/bin/python bench/audit_chain.py [--single 2000] [--batched 50000] [--threads 8]

Numbers are printed, not recorded: they depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from yilian.audit import AuditInput, append, append_batch, verify
from yilian.db import make_engine, session_factory, unit_of_work
from yilian.schema import upgrade_to_head

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def entry(n: int) -> AuditInput:
    return AuditInput(
        actor=f"Practitioner/doc-{n % 50}",
        actor_role="family doctor",
        event="read" if n % 4 else "search",
        purpose="TREAT",
        resources=[f"Observation/obs-{n}/_history/1"],
        patients=[f"Patient/p-{n % 1000}"],
        source_address="10.0.0.7",
        request_id=f"req-{n}",
        query="Observation?patient=Patient/p-1" if n % 4 == 0 else None,
    )


@contextmanager
def databases() -> Iterator[dict[str, Engine]]:
    name = f"yilian_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    with tempfile.TemporaryDirectory() as tmp:
        engines = {
            "sqlite": make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite'}"),
            "postgresql": make_engine(PG_ADMIN.rsplit("/", 1)[0] + "/" + name),
        }
        try:
            for engine in engines.values():
                upgrade_to_head(engine)
            yield engines
        finally:
            for engine in engines.values():
                engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>10,.0f}/s  ({count:,} in {seconds:.2f} s)"


def bench_single(engine: Engine, count: int, threads: int) -> float:
    """``count`` appends, each in its own transaction, spread over ``threads`` writers."""
    factory = session_factory(engine)
    per_thread = count // threads

    def writer(t: int) -> None:
        for i in range(per_thread):
            with unit_of_work(factory) as session:
                append(session, entry(t * per_thread + i))

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    began = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - began


def bench_batched(engine: Engine, count: int, batch: int = 1000) -> float:
    factory = session_factory(engine)
    began = time.perf_counter()
    for first in range(0, count, batch):
        with unit_of_work(factory) as session:
            append_batch(session, [entry(n) for n in range(first, min(first + batch, count))])
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--single", type=int, default=2000, help="single-entry transactions")
    parser.add_argument("--batched", type=int, default=50_000, help="entries appended in batches")
    parser.add_argument("--threads", type=int, default=8, help="concurrent single appenders")
    args = parser.parse_args()
    with databases() as engines:
        for name, engine in engines.items():
            single = bench_single(engine, args.single, args.threads)
            batched = bench_batched(engine, args.batched)
            with session_factory(engine)() as session:
                report = verify(session)
            assert report.ok, report
            print(f"{name}")
            print(
                f"  append, 1 per transaction, {args.threads} threads: {rate(args.single, single)}"
            )
            print(f"  append_batch (1,000 per transaction):       {rate(args.batched, batched)}")
            print(
                f"  verify:                                      "
                f"{rate(report.checked, report.seconds)}"
            )


if __name__ == "__main__":
    main()
