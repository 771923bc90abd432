"""Bulk-load throughput: Synthea-like NDJSON into PostgreSQL and SQLite, against a raw COPY.

Replicates the Synthea transaction Bundles with fresh ids (urn:uuid references rewritten to
Type/id) to ``--resources`` resources, writes one NDJSON file, loads it with validation on into a
fresh database of each backend, and loads the same lines with a bare ``COPY`` into a one-column
JSONB table — the floor that no FHIR loader can beat. Prints resources/s and the ratio.

    .venv/bin/python bench/bulk_load.py --resources 60000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text

from yilian.db import make_engine
from yilian.fhir.bulk.importer import Loader, LoadOptions
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.schema import upgrade_to_head

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


def fresh_pg() -> tuple[str, str]:
    name = f"yilian_bench_{uuid.uuid4().hex[:8]}"
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


def load(url: str, path: Path, workers: int) -> tuple[int, int, float]:
    engine = make_engine(url)
    upgrade_to_head(engine)
    runtime = Runtime(engine, "http://bench/fhir")
    started = time.perf_counter()
    report = Loader(runtime, RequestContext.system(), LoadOptions(workers=workers)).load([path])
    seconds = time.perf_counter() - started
    engine.dispose()
    return report.loaded, report.rejected, seconds


def raw_copy(url: str, path: Path) -> float:
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE raw_json (doc jsonb)")
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY raw_json (doc) FROM STDIN") as copy,
            path.open("rb") as handle,
        ):
            for line in handle:
                copy.write_row((line.rstrip(b"\n").decode(),))
        conn.commit()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=60000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthea.ndjson"
        count = replicate(args.resources, path)
        size = path.stat().st_size / 1e6
        print(f"{count} resources, {size:.0f} MB NDJSON, validation on, {args.workers} workers")
        url, name = fresh_pg()
        try:
            loaded, rejected, seconds = load(url, path, args.workers)
            print(
                f"postgresql: {loaded} loaded, {rejected} rejected, {seconds:.1f} s, "
                f"{loaded / seconds:,.0f} resources/s"
            )
            raw = raw_copy(url, path)
            print(
                f"raw COPY into one jsonb column: {raw:.1f} s, {count / raw:,.0f} rows/s; "
                f"yilian load takes {seconds / raw:.1f}x as long"
            )
        finally:
            drop_pg(name)
        if not args.skip_sqlite:
            loaded, rejected, seconds = load(f"sqlite:///{tmp}/bench.sqlite", path, args.workers)
            print(
                f"sqlite: {loaded} loaded, {rejected} rejected, {seconds:.1f} s, "
                f"{loaded / seconds:,.0f} resources/s"
            )


if __name__ == "__main__":
    main()
