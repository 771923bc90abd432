"""Read-path latency of the FHIR store at 1,000,000 resources, on PostgreSQL and SQLite.

Builds one database per backend from the synthetic district (``yilian.synth``: realistic
resources and references) plus a few "heavy" patients of ~500 resources each for ``$everything``.
Index rows come from ``extract_index_rows`` on every resource — exactly what the store writes —
and go in with ``COPY`` (PostgreSQL) or ``executemany`` (SQLite), secondary indexes rebuilt after.
An existing database with the right resource count is reused (``--rebuild`` to force).

Then each query is timed through the real service layer (``Runtime.transaction`` →
``FhirService``: search, audit entry, commit) and through HTTP (uvicorn in a second process,
httpx here), with parameter values sampled from the data. Usage:

    .venv/bin/python bench/store_queries.py [--backends postgresql,sqlite] [--runs 200]
        [--resources 1000000] [--rebuild] [--no-http] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import os
import platform
import pstats
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects import sqlite as sqlite_dialect

from yilian.auth.principal import Role
from yilian.auth.service import create_user, find_user, issue_token
from yilian.db import make_engine, session_factory
from yilian.fhir.models import INDEX_TABLES
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.fhir.searchparams.extract import extract_index_rows
from yilian.schema import upgrade_to_head
from yilian.synth.generator import DistrictGenerator, SynthConfig

ROOT = Path(__file__).resolve().parent
ADMIN = os.environ.get("YILIAN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCALE = 0.09  # ≈ 1.1 M resources per seed; the stream is cut at --resources
HEAVY_PATIENTS = 20  # $everything rotates over them
HEAVY_SIZE = 500
BATCH = 20_000
TARGETS_MS = {"everything": 200.0}  # every other query: 50 ms (the issue's p95 targets)
Json = dict[str, Any]
Params = list[tuple[str, str]]


# ------------------------------------------------------------------------------------ data


def heavy_patients() -> Iterator[Json]:
    """``heavy-{i}``: a Patient plus ~500 resources copied from whole synthetic patients.

    The copies come from seed 2 (ids ``p2-…``, disjoint from the main stream) and are rewritten
    in JSON text so that every per-patient id and intra-patient reference (encounter, report,
    result) stays consistent; references to shared staff and facilities are kept.
    """
    stream = DistrictGenerator(SynthConfig(scale=SCALE, seed=2)).resources()
    people: dict[str, Json] = {}
    owned: dict[str, list[Json]] = {}
    count = 0
    for resource in stream:
        rid = str(resource.get("id", ""))
        if not rid.startswith("p2-"):
            continue  # network and staff: the main stream has the same ones
        if resource["resourceType"] == "Patient":
            if count >= HEAVY_SIZE - 1:
                break
            people[rid] = resource
            continue
        owner = "-".join(rid.split("-")[:2])
        if owner in people:
            owned.setdefault(owner, []).append(resource)
            count += 1
    for i in range(HEAVY_PATIENTS):
        heavy = f"heavy-{i}"
        first = next(iter(people.values()))
        patient = orjson.loads(orjson.dumps(first))
        patient["id"] = heavy
        for identifier in patient.get("identifier", []):
            identifier["value"] = f"{identifier['value']}H{i}"
        yield patient
        for j, (owner, resources) in enumerate(owned.items()):
            for resource in resources:
                body = orjson.dumps(resource).decode()
                body = body.replace(f'"Patient/{owner}"', f'"Patient/{heavy}"')
                body = body.replace(f'"{owner}-', f'"{heavy}-t{j}-')
                body = body.replace(f"/{owner}-", f"/{heavy}-t{j}-")
                yield orjson.loads(body)


def district(total: int) -> Iterator[Json]:
    """Exactly ``total`` resources: the heavy patients, then the seed-1 district, cut."""
    written = 0
    for resource in heavy_patients():
        yield resource
        written += 1
    for resource in DistrictGenerator(SynthConfig(scale=SCALE, seed=1)).resources():
        if written >= total:
            return
        yield resource
        written += 1
    raise SystemExit(f"the district at scale {SCALE} has fewer than {total} resources")


@dataclass
class Batch:
    resources: list[tuple[Any, ...]] = field(default_factory=list)
    index: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def batches(total: int) -> Iterator[Batch]:
    """Stored rows as ``ResourceStore._write_new`` makes them: stamped meta, extracted index."""
    now = datetime.now(UTC).replace(tzinfo=None)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    batch = Batch()
    for pk, resource in enumerate(district(total), start=1):
        resource["meta"] = {**resource.get("meta", {}), "versionId": "1", "lastUpdated": stamp}
        batch.resources.append(
            (pk, resource["resourceType"], resource["id"], 1, now, False, resource)
        )
        for kind, rows in extract_index_rows(resource).items():
            target = batch.index.setdefault(kind, [])
            for row in rows:
                row["resource_pk"] = pk
                target.append(row)
        if len(batch.resources) == BATCH:
            yield batch
            batch = Batch()
    if batch.resources:
        yield batch


RESOURCE_COLUMNS = ("pk", "res_type", "res_id", "version_id", "last_updated", "deleted", "content")


def index_columns(kind: str) -> list[str]:
    return [c.name for c in INDEX_TABLES[kind].__table__.columns if c.name != "pk"]


def secondary_indexes() -> list[Any]:
    """Indexes of the index tables: dropped for the load, rebuilt once after it."""
    return [ix for table in INDEX_TABLES.values() for ix in table.__table__.indexes]  # type: ignore[attr-defined]


class PostgresWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn = psycopg.connect(engine.url.set(drivername="postgresql").render_as_string(False))
        self.conn.execute("SET session_replication_role = replica")  # skip FK triggers

    def write(self, batch: Batch) -> None:
        with self.conn.cursor() as cursor:
            names = ", ".join(RESOURCE_COLUMNS)
            with cursor.copy(f"COPY fhir_resource ({names}) FROM STDIN") as copy:
                for row in batch.resources:
                    copy.write_row((*row[:6], orjson.dumps(row[6]).decode()))
            for kind, rows in batch.index.items():
                columns = index_columns(kind)
                table = INDEX_TABLES[kind].__tablename__
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for r in rows:
                        copy.write_row(tuple(r[c] for c in columns))
        self.conn.commit()

    def close(self) -> None:
        self.conn.execute(
            "SELECT setval(pg_get_serial_sequence('fhir_resource', 'pk'), "
            "(SELECT max(pk) FROM fhir_resource))"
        )
        self.conn.commit()
        self.conn.close()


class SqliteWriter:
    """Raw sqlite3 with the column types' own bind processors, so stored text is what the ORM
    would write (DateTime as ``YYYY-MM-DD HH:MM:SS.ffffff``, booleans as 0/1)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        dialect = sqlite_dialect.dialect()
        low = INDEX_TABLES["date"].__table__.c.low.type  # type: ignore[attr-defined]
        date_bind = low.dialect_impl(dialect).bind_processor(dialect)
        assert date_bind is not None
        self.date_bind: Callable[[Any], Any] = date_bind

    def write(self, batch: Batch) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany(
            f"INSERT INTO fhir_resource ({', '.join(RESOURCE_COLUMNS)}) VALUES (?,?,?,?,?,?,?)",
            [
                (*r[:4], self.date_bind(r[4]), 0, orjson.dumps(r[6]).decode())
                for r in batch.resources
            ],
        )
        for kind, rows in batch.index.items():
            columns = index_columns(kind)
            table = INDEX_TABLES[kind].__tablename__
            marks = ",".join("?" * len(columns))
            dated = {"low", "high"} if kind == "date" else set()
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                [
                    tuple(self.date_bind(r[c]) if c in dated else r[c] for c in columns)
                    for r in rows
                ],
            )
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


@dataclass
class Backend:
    name: str
    url: str
    engine: Engine


def pg_backend(total: int, rebuild: bool, tag: str = "") -> tuple[Backend, bool]:
    name = f"yilian_bench_{tag}_store_{total}" if tag else f"yilian_bench_store_{total}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        present = exists.first() is not None
        if present and rebuild:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            present = False
        if not present:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    return Backend("postgresql", url, engine), not present or count(engine) != total


def sqlite_backend(total: int, rebuild: bool, tag: str = "") -> tuple[Backend, bool]:
    path = ROOT / "out" / (f"{tag}_store_{total}.sqlite" if tag else f"store_{total}.sqlite")
    path.parent.mkdir(parents=True, exist_ok=True)
    if rebuild:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    present = path.exists() and path.stat().st_size > 0
    if present and count(engine) != total:
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        engine = make_engine(url)
        present = False
    return Backend("sqlite", url, engine), not present


def count(engine: Engine) -> int:
    """Resources the build wrote (the benchmark's own AuditEvents are not counted)."""
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM fhir_resource WHERE res_type <> 'AuditEvent'")
                ).scalar_one()
            )
    except Exception:  # no schema yet
        return -1


def build(backends: list[Backend], total: int, console: Console) -> None:
    writers: list[PostgresWriter | SqliteWriter] = []
    for backend in backends:
        upgrade_to_head(backend.engine)
        with backend.engine.begin() as conn:
            for ix in secondary_indexes():
                conn.execute(text(f"DROP INDEX IF EXISTS {ix.name}"))
        if backend.name == "postgresql":
            writers.append(PostgresWriter(backend.engine))
        else:
            writers.append(SqliteWriter(Path(backend.engine.url.database or "")))
    start = time.perf_counter()
    done = 0
    for batch in batches(total):
        for writer in writers:
            writer.write(batch)
        done += len(batch.resources)
        if done % 100_000 == 0:
            console.log(f"{done:,} resources, {time.perf_counter() - start:.0f} s")
    for writer in writers:
        writer.close()
    for backend in backends:
        t0 = time.perf_counter()
        with backend.engine.begin() as conn:
            for ix in secondary_indexes():
                ix.create(conn)
            conn.execute(text("ANALYZE"))
        console.log(f"{backend.name}: indexes + ANALYZE {time.perf_counter() - t0:.0f} s")


# --------------------------------------------------------------------------------- queries


@dataclass
class Query:
    label: str
    target_ms: float
    cases: list[tuple[str, Params]]  # (path under /fhir, params): varied per run


def reset_audit(engine: Engine) -> int:
    """Remove the AuditEvents earlier benchmark runs left, so every run starts from the built
    1,000,000 resources (``$everything`` returned a patient's AuditEvents until ADR 0011; they
    still grow the index tables). The hash chain itself is kept; this is a scratch database."""
    owners = "SELECT pk FROM fhir_resource WHERE res_type = 'AuditEvent'"
    with engine.begin() as conn:
        for table in INDEX_TABLES.values():
            conn.execute(text(f"DELETE FROM {table.__tablename__} WHERE resource_pk IN ({owners})"))
        conn.execute(text("DELETE FROM fhir_resource_version WHERE res_type = 'AuditEvent'"))
        removed = conn.execute(text("DELETE FROM fhir_resource WHERE res_type = 'AuditEvent'"))
        return int(removed.rowcount)


def sample_queries(engine: Engine, runs: int, seed: int = 7) -> list[Query]:
    """Parameter values drawn from the stored data: real identifiers, patients, codes, dates."""
    rng = random.Random(seed)

    def pks(res_type: str) -> list[int]:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT pk FROM fhir_resource WHERE res_type = :t"), {"t": res_type}
            ).scalars()
            return rng.sample(list(rows), runs)

    return [
        *search_queries(engine, rng, pks),
        Query(
            "Patient/$everything (~500)",
            TARGETS_MS["everything"],
            [(f"Patient/heavy-{i % HEAVY_PATIENTS}/$everything", []) for i in range(runs)],
        ),
    ]


def search_queries(
    engine: Engine, rng: random.Random, pks: Callable[[str], list[int]]
) -> list[Query]:
    """Issue #2's three searches, their values read from the resources ``pks(type)`` picks
    (resource keys; one case per picked resource that has the values)."""

    def rows(sql: str, owners: list[int]) -> list[Any]:
        found = []
        with engine.connect() as conn:
            for pk in owners:
                found.append(conn.execute(text(sql), {"pk": pk}).first())
        return [r for r in found if r is not None]

    identifiers = rows(
        "SELECT system, code FROM idx_token WHERE resource_pk = :pk AND param = 'identifier'",
        pks("Patient"),
    )
    observations = rows(
        "SELECT r.target_id, t.system, t.code, d.low FROM idx_reference r "
        "JOIN idx_token t ON t.resource_pk = r.resource_pk AND t.param = 'code' "
        "JOIN idx_date d ON d.resource_pk = r.resource_pk AND d.param = 'date' "
        "WHERE r.resource_pk = :pk AND r.param = 'subject' AND r.target_type = 'Patient'",
        pks("Observation"),
    )
    encounters = rows(
        "SELECT r.target_id, d.low FROM idx_reference r "
        "JOIN idx_date d ON d.resource_pk = r.resource_pk AND d.param = 'date' "
        "WHERE r.resource_pk = :pk AND r.param = 'patient'",
        pks("Encounter"),
    )

    def day(value: Any, shift: int) -> str:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return (moment - timedelta(days=shift)).strftime("%Y-%m-%d")

    return [
        Query(
            "Patient?identifier",
            50.0,
            [("Patient", [("identifier", f"{s}|{c}")]) for s, c in identifiers],
        ),
        Query(
            "Observation?subject&code&date=ge",
            50.0,
            [
                (
                    "Observation",
                    [
                        ("subject", f"Patient/{p}"),
                        ("code", f"{s}|{c}"),
                        ("date", "ge" + day(low, rng.randint(0, 365))),
                    ],
                )
                for p, s, c, low in observations
            ],
        ),
        Query(
            "Encounter?patient&date",
            50.0,
            [
                (
                    "Encounter",
                    [
                        ("patient", p),
                        ("date", "ge" + day(low, 180)),
                        ("date", "lt" + day(low, -185)),
                    ],
                )
                for p, low in encounters
            ],
        ),
    ]


def call_service(
    runtime: Runtime,
    path: str,
    params: Params,
    context: Callable[[], RequestContext] | None = None,
) -> int:
    """One request through the service layer; returns the number of bundle entries.
    ``context`` makes each request's context (default: a system actor, no access guard)."""
    ctx = context() if context is not None else RequestContext.system("system/bench")
    with runtime.transaction(ctx) as service:
        if path.endswith("$everything"):
            bundle = service.everything(path.split("/")[1])
        else:
            bundle = service.search(path, params)
    return len(bundle.get("entry", []))


def call_http(client: httpx.Client, path: str, params: Params) -> int:
    response = client.get(f"/{path}", params=params)
    response.raise_for_status()
    return len(response.json().get("entry", []))


@dataclass
class Result:
    backend: str
    layer: str
    query: Query
    timings: list[float]
    entries: list[int]
    cpu: list[float]  # this process's CPU per request: all of it for SQLite's service layer

    def cpu_p50(self) -> str:
        return f"{sorted(self.cpu)[len(self.cpu) // 2]:.1f}" if self.layer == "service" else "–"

    def pct(self, p: float) -> float:
        ordered = sorted(self.timings)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1)]


def timed(
    backend: str, layer: str, query: Query, call: Callable[[str, Params], int], warmup: int
) -> Result:
    for path, params in query.cases[:warmup]:
        call(path, params)
    timings, entries, cpu = [], [], []
    for path, params in query.cases:
        start, cpu_start = time.perf_counter(), time.process_time()
        entries.append(call(path, params))
        timings.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - cpu_start) * 1000)
    return Result(backend, layer, query, timings, entries, cpu)


def bench_token(engine: Engine) -> str:
    """A bearer token of the user ``bench`` (role admin, created once): the FHIR routes require
    authentication (docs/authorization.md), and admin is the role whose checks cost least, so
    the HTTP figures are the store's and the API's, not one clinical role's policy queries."""
    with session_factory(engine)() as session, session.begin():
        user = find_user(session, "bench") or create_user(
            session, "bench", Role("admin"), display_name="benchmark"
        )
        return issue_token(session, user, days=1).value


@contextmanager
def server(
    url: str, port: int, token: str, command: list[str] | None = None
) -> Iterator[httpx.Client]:
    """A uvicorn server in a second process (``command``, default this script's ``--serve``)
    and an httpx client for its ``/fhir``."""
    process = subprocess.Popen(
        command or [sys.executable, __file__, "--serve", url, "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}/fhir",
        timeout=60,
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        for _ in range(300):
            try:
                if client.get("/metadata").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit("the uvicorn server did not start")
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(10)


def serve(url: str, port: int) -> None:
    import uvicorn

    from yilian.app import create_app

    app = create_app(engine=make_engine(url), base_url=f"http://127.0.0.1:{port}", migrate=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ------------------------------------------------------------------------------- diagnosis


def diagnose(
    backend: Backend, runtime: Runtime, query: Query, console: Console, growth_calls: int = 40
) -> None:
    """Statement timings, EXPLAIN ANALYZE (PostgreSQL) and a cProfile of one request
    (``$everything``: then ``growth_calls`` more calls of it, none if 0)."""
    path, params = query.cases[0]
    statements: list[tuple[float, str, Any]] = []
    started: dict[int, float] = {}

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        elapsed = (time.perf_counter() - started.pop(id(cursor))) * 1000
        statements.append((elapsed, statement, parameters))

    event.listen(backend.engine, "before_cursor_execute", before)
    event.listen(backend.engine, "after_cursor_execute", after)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(call_service, runtime, path, params)
    total = (time.perf_counter() - start) * 1000
    event.remove(backend.engine, "before_cursor_execute", before)
    event.remove(backend.engine, "after_cursor_execute", after)
    console.rule(f"{backend.name} · {query.label} · one request {total:.1f} ms (profiled)")
    sql_ms = sum(s[0] for s in statements)
    console.print(f"{len(statements)} statements, {sql_ms:.1f} ms in the driver")
    for elapsed, statement, _ in sorted(statements, key=lambda s: -s[0])[:6]:
        console.print(f"  {elapsed:7.2f} ms  {' '.join(statement.split())[:150]}", markup=False)
    slowest = max(statements, key=lambda s: s[0])
    if backend.name == "postgresql" and slowest[1].lstrip().upper().startswith("SELECT"):
        with backend.engine.connect() as conn:
            plan = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + slowest[1], slowest[2]
            ).scalars()
            console.print("\n".join(plan), markup=False, highlight=False)
    if path.endswith("$everything") and growth_calls:
        growth(runtime, path, console, growth_calls)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    console.print(out.getvalue(), markup=False, highlight=False)


def growth(runtime: Runtime, path: str, console: Console, calls: int = 40) -> None:
    """``$everything`` of one patient called again and again: each call's AuditEvent names the
    patient, so it joins the patient's compartment and every later call returns it."""
    seen = []
    for n in range(1, calls + 1):
        start = time.perf_counter()
        entries = call_service(runtime, path, [])
        if n in (1, 5, 10, 20, calls):
            seen.append(
                f"call {n}: {(time.perf_counter() - start) * 1000:.0f} ms, {entries} entries"
            )
    console.print(f"repeated {path}: " + " · ".join(seen))


# ------------------------------------------------------------------------------------ main


def machine() -> str:
    cores = os.cpu_count()
    with open("/proc/meminfo") as handle:
        kb = int(handle.readline().split()[1])
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.node()} · {cores} cores · "
        f"{kb / 1024 / 1024:.1f} GiB RAM · Python {platform.python_version()}\n  uptime: {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--keep-audit", action="store_true", help="keep earlier runs' AuditEvents")
    parser.add_argument("--profile", action="store_true", help="diagnose every query once")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--tag",
        default="",
        help="name the databases yilian_bench_TAG_store_N / out/TAG_store_N.sqlite",
    )
    args = parser.parse_args()
    if args.tag and not args.tag.replace("_", "").isalnum():
        parser.error(f"--tag {args.tag!r}: letters, digits and _ only (it names a database)")
    if args.serve:
        serve(args.serve, args.port)
        return
    console = Console(width=150)
    console.print(machine())
    makers = {"postgresql": pg_backend, "sqlite": sqlite_backend}
    names = args.backends.split(",")
    unknown = [name for name in names if name not in makers]
    if unknown:
        parser.error(f"--backends: unknown {unknown}; choose from {sorted(makers)}")
    chosen = [makers[name](args.resources, args.rebuild, args.tag) for name in names]
    to_build = [backend for backend, stale in chosen if stale]
    if to_build:
        console.log(f"building {[b.name for b in to_build]} with {args.resources:,} resources")
        build(to_build, args.resources, console)
    if args.build_only:
        return
    results: list[Result] = []
    for backend, _ in chosen:
        upgrade_to_head(backend.engine)  # migrations added since the build (e.g. auth tables)
        if not args.keep_audit:
            console.log(f"{backend.name}: removed {reset_audit(backend.engine)} old AuditEvents")
        queries = sample_queries(backend.engine, args.runs)
        runtime = Runtime(backend.engine, "http://bench/fhir")
        for query in queries:
            call = functools.partial(call_service, runtime)
            results.append(timed(backend.name, "service", query, call, args.warmup))
            console.log(f"{backend.name} service {query.label}: done · {load_avg()}")
        if not args.no_http:
            with server(backend.url, args.port, bench_token(backend.engine)) as client:
                for query in queries:
                    over_http = functools.partial(call_http, client)
                    results.append(timed(backend.name, "http", query, over_http, args.warmup))
                    console.log(f"{backend.name} http {query.label}: done · {load_avg()}")
        if args.profile:
            for query in queries:
                diagnose(backend, runtime, query, console)
    table = Table(
        "backend",
        "layer",
        "query",
        "runs",
        "entries",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "client CPU p50 ms",
        "target p95",
    )
    for r in results:
        p95 = r.pct(95)
        mark = "ok" if p95 <= r.query.target_ms else "MISS"
        table.add_row(
            r.backend,
            r.layer,
            r.query.label,
            str(len(r.timings)),
            f"{sum(r.entries) / len(r.entries):.1f}",
            f"{r.pct(50):.1f}",
            f"{p95:.1f}",
            f"{r.pct(99):.1f}",
            r.cpu_p50(),
            f"≤ {r.query.target_ms:.0f} {mark}",
        )
    console.print(table)
    console.print(machine())


def load_avg() -> str:
    return "load " + " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
