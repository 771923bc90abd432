"""Patient matching at 1,000,000 Patients (issue #6): the real-time match on PostgreSQL, and the
population that ``yilian mpi dedupe`` runs on with DuckDB.

``generate``: synthetic residents of the district (``yilian.synth`` people and households, Patients
only) with re-registrations at hospitals (``DuplicateMaker``, typos, twins), written to
``OUT/Patient.ndjson`` — the first ``--patients`` go to the store, the next ``--incoming`` are
held back as the Patients that arrive.

``build``: a PostgreSQL database holding those Patients (``fhir_resource`` by COPY, as
bench/store_queries.py does) and their blocking keys (``mpi_blocking_key``, computed by
``yilian.mpi.keys`` exactly as the write hook does, by COPY). Search-index rows are not written:
the match reads only Patients and keys.

``realtime``: for each held-back Patient, ``match_patient`` (candidate keys → candidates →
scoring with the shipped model) inside a read transaction, and the whole create through
``Runtime.transaction`` with the matching hook (validation, write, keys, decision, audit,
commit). Prints p50/p95/max and the decisions.

    .venv/bin/python bench/mpi_million.py generate --out /tmp/mpi1m [--patients 1000000]
    flock /tmp/bench.lock .venv/bin/python bench/mpi_million.py build --out /tmp/mpi1m
    flock /tmp/bench.lock .venv/bin/python bench/mpi_million.py realtime --out /tmp/mpi1m
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import create_engine, text

from yilian.db import make_engine
from yilian.fhir.notes import headers_for
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.mpi import realtime
from yilian.mpi.chinese import chinese_spec
from yilian.mpi.keys import patient_records, record_keys
from yilian.mpi.trained import current_model
from yilian.schema import upgrade_to_head
from yilian.synth.duplicates import DuplicateMaker, hospitals
from yilian.synth.facilities import build_network
from yilian.synth.generator import patient
from yilian.synth.geography import SUBDISTRICTS, district_population
from yilian.synth.identifiers import ResidentIdAllocator
from yilian.synth.people import PeopleFactory

ADMIN = os.environ.get("YILIAN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DATABASE = "yilian_bench_mpi"
END = dt.date(2026, 10, 31)
SEED = 1
CHUNK = 50_000


def residents(scale: float) -> Iterator[dict[str, Any]]:
    """The district's residents as Patients (no encounters), household by household."""
    populations = district_population(scale)
    network = build_network(populations)
    factory = PeopleFactory(SEED, END, ResidentIdAllocator(random.Random(f"{SEED}/resident-ids")))
    for sub in SUBDISTRICTS:
        chc = network.chc_of(sub.code)
        for household in factory.households(sub, populations[sub.code]):
            for person in household.members:
                yield patient(person, household, chc, None)


def generate(out: Path, total: int, duplicates: float) -> None:
    started = time.perf_counter()
    # residents plus their re-registrations (rate x ~1.2 copies) and twins make ``total``
    scale = total / 693_051 / (1 + duplicates * 1.25) * 1.05
    network = build_network(district_population(scale))
    maker = DuplicateMaker(duplicates, SEED, hospitals(network), END)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    with (out / "Patient.ndjson").open("wb") as sink:
        for resource_ in maker.process(residents(scale)):
            sink.write(orjson.dumps(resource_) + b"\n")
            count += 1
            if count >= total:
                break
    maker.write_truth(out)
    print(f"{count:,} Patients in {time.perf_counter() - started:.1f} s -> {out}")


def read_patients(out: Path) -> Iterator[dict[str, Any]]:
    with (out / "Patient.ndjson").open("rb") as source:
        for line in source:
            yield orjson.loads(line)


def database_url(create: bool) -> str:
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if create:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    return ADMIN.rsplit("/", 1)[0] + "/" + DATABASE


def build(out: Path, stored: int) -> None:
    started = time.perf_counter()
    url = database_url(create=True)
    engine = make_engine(url)
    upgrade_to_head(engine)
    conn = psycopg.connect(engine.url.set(drivername="postgresql").render_as_string(False))
    conn.execute("ALTER TABLE mpi_blocking_key DROP CONSTRAINT pk_mpi_blocking_key")
    conn.execute("DROP INDEX ix_mpi_blocking_key_patient")
    rules = chinese_spec().blocking
    now = dt.datetime(2026, 11, 1)
    batch: list[dict[str, Any]] = []
    written = keys = 0

    def flush() -> None:
        nonlocal keys
        records = patient_records(batch)
        with conn.cursor() as cursor:
            columns = "res_type, res_id, version_id, last_updated, deleted, content"
            with cursor.copy(f"COPY fhir_resource ({columns}) FROM STDIN") as copy:
                for body in batch:
                    stamped = {**body, "meta": {"versionId": "1", "lastUpdated": now.isoformat()}}
                    copy.write_row(
                        ("Patient", body["id"], 1, now, False, orjson.dumps(stamped).decode())
                    )
            with cursor.copy("COPY mpi_blocking_key (key, patient_id) FROM STDIN") as copy:
                for row in range(len(records)):
                    for key in record_keys(records, row, rules):
                        copy.write_row((key, batch[row]["id"]))
                        keys += 1
        conn.commit()

    for body in read_patients(out):
        if written >= stored:
            break
        batch.append(body)
        written += 1
        if len(batch) >= CHUNK:
            flush()
            batch = []
            print(f"  {written:,} Patients, {keys:,} keys, {time.perf_counter() - started:.0f} s")
    if batch:
        flush()
    copied = time.perf_counter()
    conn.execute(
        "ALTER TABLE mpi_blocking_key "
        "ADD CONSTRAINT pk_mpi_blocking_key PRIMARY KEY (key, patient_id)"
    )
    conn.execute("CREATE INDEX ix_mpi_blocking_key_patient ON mpi_blocking_key (patient_id)")
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE fhir_resource")
    conn.execute("VACUUM ANALYZE mpi_blocking_key")
    conn.close()
    print(
        f"built {written:,} Patients and {keys:,} blocking keys: copy {copied - started:.0f} s, "
        f"indexes and analyze {time.perf_counter() - copied:.0f} s"
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def realtime_bench(out: Path, stored: int, incoming: int) -> None:
    engine = make_engine(database_url(create=False))
    arriving = []
    for k, body in enumerate(read_patients(out)):
        if k >= stored:
            arriving.append(body)
        if len(arriving) >= incoming:
            break
    runtime = Runtime(engine, "http://bench/fhir")
    realtime.install(runtime)
    ctx = RequestContext.system("system/bench-registration")
    with runtime.transaction(ctx) as service:  # warm: model, pinyin tables, plan cache
        model = current_model(service.session)
        for body in arriving[:20]:
            realtime.match_patient(service.session, body, model)
    match_ms: list[float] = []
    cpu_ms: list[float] = []
    candidates: list[int] = []
    for body in arriving:
        with runtime.transaction(ctx) as service:
            cpu = time.process_time()
            clock = time.perf_counter()
            result = realtime.match_patient(service.session, body, model)
            match_ms.append((time.perf_counter() - clock) * 1000)
            cpu_ms.append((time.process_time() - cpu) * 1000)
            candidates.append(len(result.candidates))
    create_ms: list[float] = []
    decisions: Counter[str] = Counter()
    for body in arriving:
        clock = time.perf_counter()
        with runtime.transaction(ctx) as service:
            written = service.store.create({k: v for k, v in body.items() if k != "id"})
            note = headers_for(service.session, written.reference).get(realtime.HEADER, "")
        create_ms.append((time.perf_counter() - clock) * 1000)
        decisions[note.split(";")[0]] += 1
    print(f"load average {Path('/proc/loadavg').read_text().strip()}")
    for label, values in (("match", match_ms), ("match CPU", cpu_ms), ("create", create_ms)):
        print(
            f"{label:10s} n={len(values)} p50={percentile(values, 50):.1f} ms "
            f"p95={percentile(values, 95):.1f} ms max={max(values):.1f} ms "
            f"mean={statistics.mean(values):.1f} ms"
        )
    print(
        f"candidates per Patient: mean {statistics.mean(candidates):.1f}, "
        f"p95 {percentile([float(c) for c in candidates], 95):.0f}, max {max(candidates)}"
    )
    print(f"decisions of the creates: {dict(decisions)}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("generate", "build", "realtime"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--incoming", type=int, default=500)
    parser.add_argument("--duplicates", type=float, default=0.1)
    args = parser.parse_args()
    if args.step == "generate":
        generate(args.out, args.patients + args.incoming, args.duplicates)
    elif args.step == "build":
        build(args.out, args.patients)
    else:
        realtime_bench(args.out, args.patients, args.incoming)


if __name__ == "__main__":
    main()
