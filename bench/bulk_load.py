"""Bulk-load throughput: mixed clinical NDJSON into PostgreSQL and SQLite, against a raw COPY.

Input (``--source``): ``district`` (default) is the first ``--resources`` resources of the
synthetic Changning district (``yilian.synth``: care network and staff, then residents with their
encounters, observations, conditions, medication requests, immunizations, …); ``synthea``
replicates the Synthea transaction Bundles with fresh ids (urn:uuid references rewritten to
Type/id). One NDJSON file is written and loaded with validation on into a fresh database of each
backend; on PostgreSQL the same lines also go in by a bare ``COPY`` into a one-column JSONB table —
the floor that no FHIR loader can beat. Prints resources/s and the ratio.

Wall-clock rates depend on what else runs on the machine, so the script also measures the CPU
time the load consumed, per process group (the loader's main process, its worker processes and
the PostgreSQL backends serving it; sampled from /proc), and prints the rate the load would reach
if it had ``--cores`` cores to itself: resources / (CPU seconds / cores).

    .venv/bin/python bench/bulk_load.py --resources 60000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text

from yilian.db import make_engine
from yilian.fhir.bulk.importer import Loader, LoadOptions
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.jsonutil import dumps
from yilian.schema import upgrade_to_head
from yilian.synth.generator import DistrictGenerator, SynthConfig

SYNTHEA = Path(__file__).resolve().parents[2] / "shared/data/fhir/synthea-r4"
ADMIN = os.environ.get("YILIAN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def bundles() -> list[list[dict[str, Any]]]:
    out = []
    for path in sorted(SYNTHEA.glob("synthea-r4-*.json")):
        bundle = json.loads(path.read_text())
        out.append([e for e in bundle["entry"] if "resource" in e])
    return out


def replicate(target: int, out: Path) -> int:
    """Copies of every Bundle with fresh ids until ``target`` resources are written."""
    written = 0
    sources = bundles()
    with out.open("w") as handle:
        while written < target:
            for entries in sources:
                mapping: dict[str, str] = {}
                for entry in entries:
                    res = entry["resource"]
                    fresh = str(uuid.uuid4())
                    mapping[entry["fullUrl"]] = f"{res['resourceType']}/{fresh}"
                    mapping[f"{res['resourceType']}/{res['id']}"] = mapping[entry["fullUrl"]]
                for entry in entries:
                    res = dict(entry["resource"])
                    res["id"] = mapping[entry["fullUrl"]].split("/", 1)[1]
                    line = json.dumps(res)
                    for old, new in mapping.items():
                        if old in line:
                            line = line.replace(f'"{old}"', f'"{new}"')
                    handle.write(line + "\n")
                    written += 1
                if written >= target:
                    break
    return written


def district(target: int, out: Path) -> int:
    """The first ``target`` resources of the synthetic district, at a scale that has them."""
    scale = max(0.01, target / 1_100_000 * 0.09 * 1.2)  # ≈ 1.1 M resources at scale 0.09
    written = 0
    with out.open("wb") as handle:
        for resource in DistrictGenerator(SynthConfig(scale=scale, seed=1)).resources():
            handle.write(dumps(resource) + b"\n")
            written += 1
            if written >= target:
                break
    return written


TICK = os.sysconf("SC_CLK_TCK")


def _cpu_and_parent(pid: int) -> tuple[float, int] | None:
    """(user + system CPU seconds, parent pid) of a process, from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK, int(fields[1])


class CpuMeter:
    """CPU seconds used during a load by this process (less the meter's own sampling), its
    descendants (the worker pool and its fork server) and the given PostgreSQL backends. Sampled
    every 0.2 s: a process that exits counts with its last sample (the workers live for the
    whole load)."""

    def __init__(self, backend_pids: Callable[[], list[int]] | None = None) -> None:
        self.backend_pids = backend_pids or (lambda: [])
        self.me = os.getpid()
        self.start: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.own = 0.0  # the sampling thread's own CPU seconds
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[int, tuple[str, float]]:
        parents: dict[int, tuple[float, int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                got = _cpu_and_parent(int(name))
                if got is not None:
                    parents[int(name)] = got
        out: dict[int, tuple[str, float]] = {}
        for pid, (cpu, _ppid) in parents.items():
            group = None
            walk, hops = pid, 0
            while walk in parents and hops < 6:
                if walk == self.me:
                    group = "main" if pid == self.me else "workers"
                    break
                walk, hops = parents[walk][1], hops + 1
            if group is not None:
                out[pid] = (group, cpu)
        for pid in self.backend_pids():
            got = parents.get(pid)
            if got is not None:
                out[pid] = ("postgres", got[0])
        return out

    def _run(self) -> None:
        started = time.thread_time()
        while not self.stop_event.wait(0.2):
            self.last.update(self._sample())
        # Reading /proc for ~200 processes five times a second costs this process CPU too
        # (~0.05 ms per resource at a 400/s wall rate): not the loader's, so not counted.
        self.own = time.thread_time() - started

    def __enter__(self) -> CpuMeter:
        self.start = {pid: cpu for pid, (_g, cpu) in self._sample().items()}
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join()
        self.last.update(self._sample())

    def seconds(self) -> dict[str, float]:
        groups: dict[str, float] = {"main": 0.0, "workers": 0.0, "postgres": 0.0}
        for pid, (group, cpu) in self.last.items():
            groups[group] += cpu - self.start.get(pid, 0.0)
        groups["main"] -= self.own
        return groups


def pg_backends(url: str) -> Callable[[], list[int]]:
    """Pids of the other backends connected to the bench database (the loader's connections)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    conn = psycopg.connect(dsn, autocommit=True)
    lock = threading.Lock()

    def pids() -> list[int]:
        with lock:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"  # autovacuum: not the load's own work
            ).fetchall()
        return [int(r[0]) for r in rows]

    return pids


def fresh_pg(prefix: str = "yilian_bench") -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return ADMIN.rsplit("/", 1)[0] + "/" + name, name


def drop_pg(name: str) -> None:
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def load(
    url: str, path: Path, workers: int, batch_size: int
) -> tuple[int, int, float, dict[str, float], float]:
    engine = make_engine(url)
    upgrade_to_head(engine)
    runtime = Runtime(engine, "http://bench/fhir")
    backends = pg_backends(url) if url.startswith("postgresql") else None
    with CpuMeter(backends) as meter:
        started = time.perf_counter()
        options = LoadOptions(workers=workers, batch_size=batch_size)
        report = Loader(runtime, RequestContext.system(), options).load([path])
        seconds = time.perf_counter() - started
    engine.dispose()
    return report.loaded, report.rejected, seconds, meter.seconds(), report.turn_wait


def show(
    name: str, loaded: int, rejected: int, seconds: float, cpu: dict[str, float], cores: int
) -> None:
    total = sum(cpu.values())
    parts = ", ".join(
        f"{group} {value:.1f} s = {value / loaded * 1000:.3f} ms"
        for group, value in cpu.items()
        if value
    )
    print(
        f"{name}: {loaded} loaded, {rejected} rejected, {seconds:.1f} s wall, "
        f"{loaded / seconds:,.0f} resources/s wall"
    )
    # Bounds on otherwise idle cores: all the CPU shared by the cores, and the serial stage on
    # one core — the main process (on SQLite it writes every batch; on PostgreSQL each worker
    # writes its own chunks over its own connection, so the server's work is spread too).
    serial = max(cpu["main"], 1e-9)
    bound = min(loaded / (total / cores), loaded / serial)
    limit = "the CPU on all cores" if bound == loaded / (total / cores) else "one serial stage"
    print(
        f"  CPU {total:.1f} s ({parts}) = {total / loaded * 1000:.3f} ms per resource; "
        f"on {cores} otherwise idle cores at most {bound:,.0f} resources/s (bound: {limit})"
    )


def raw_copy(url: str, path: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process + its backend) of a bare COPY of the lines."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE raw_json (doc jsonb)")
        conn.commit()
        backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        with CpuMeter(lambda: [backend]) as meter:
            started = time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy("COPY raw_json (doc) FROM STDIN") as copy,
                path.open("rb") as handle,
            ):
                for line in handle:
                    # COPY text format: only the backslash needs escaping in compact JSON
                    copy.write(line.replace(b"\\", b"\\\\"))
            conn.commit()
            seconds = time.perf_counter() - started
        return seconds, sum(meter.seconds().values())


def _loadavg() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=60000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--source", choices=("district", "synthea"), default="district")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument(
        "--input",
        type=Path,
        help="load this NDJSON file (e.g. one kept from an earlier run) instead of generating one",
    )
    parser.add_argument(
        "--db-prefix", default="yilian_bench", help="name prefix of the fresh PostgreSQL database"
    )
    args = parser.parse_args()
    if args.workers < 0 or args.batch_size < 1:
        parser.error("--workers must be >= 0 and --batch-size >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        if args.input is not None:
            if not args.input.is_file():
                parser.error(f"--input {args.input}: no such file")
            path = args.input
            with path.open("rb") as handle:
                count = sum(1 for line in handle if line.strip())
        else:
            path = Path(tmp) / f"{args.source}.ndjson"
            make = district if args.source == "district" else replicate
            count = make(args.resources, path)
        size = path.stat().st_size / 1e6
        print(
            f"{count} {args.source} resources, {size:.0f} MB NDJSON, validation on, "
            f"{args.workers} workers; load average before: {_loadavg()}"
        )
        if not args.skip_postgresql:
            url, name = fresh_pg(args.db_prefix)
            try:
                loaded, rejected, seconds, cpu, waited = load(
                    url, path, args.workers, args.batch_size
                )
                show("postgresql", loaded, rejected, seconds, cpu, args.cores)
                # A worker waiting for its turn leaves its database backend idle too.
                print(
                    f"  chunks waited {waited:.1f} s for their commit turn, "
                    f"{waited / (seconds * max(args.workers, 1)):.1%} of the workers' wall time"
                )
                raw, raw_cpu = raw_copy(url, path)
                print(
                    f"raw COPY into one jsonb column: {raw:.1f} s wall, {count / raw:,.0f} rows/s; "
                    f"CPU {raw_cpu:.1f} s, on {args.cores} idle cores "
                    f"{count / (raw_cpu / args.cores):,.0f} rows/s"
                )
                print(
                    f"  yilian load / raw COPY: {seconds / raw:.1f}x the wall time, "
                    f"{sum(cpu.values()) / raw_cpu:.1f}x the CPU"
                )
            finally:
                drop_pg(name)
        if not args.skip_sqlite:
            loaded, rejected, seconds, cpu, _waited = load(
                f"sqlite:///{tmp}/bench.sqlite", path, args.workers, args.batch_size
            )
            show("sqlite", loaded, rejected, seconds, cpu, args.cores)
        print(f"load average after: {_loadavg()}")


if __name__ == "__main__":
    main()
