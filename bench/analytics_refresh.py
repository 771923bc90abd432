"""View materialisation speed: full and incremental refresh, DuckDB vs Spark, indicator queries.

Workload: the Synthea R4 bundles in /work/shared/data/fhir/synthea-r4/ replicated ``--copies``
times with fresh ids (``<uuid>-<copy>``; ``urn:uuid:`` references rewritten to ``Type/id``),
streamed to one NDJSON file per resource type as Bulk Data ``$export`` writes them. Then:

1. full refresh of the core views on DuckDB (``refresh()``; wall time, resources/s);
2. incremental refresh after 1% of resources change: a ``_since`` export holding only the
   changed resources (new ``meta.lastUpdated``) plus a Bulk Data ``deleted`` file;
3. the same full refresh on Spark local mode (``--spark``; ratio to DuckDB);
4. two indicator queries over the materialised Parquet views, p50/p95 over 100 runs.

Prints numbers with the machine load (``os.getloadavg``); asserts nothing.

    .venv/bin/python bench/analytics_refresh.py --copies 270 --work /tmp/yilian-bench-analytics
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import duckdb

from yilian.analytics.engines import DuckDBEngine, Engine, SparkEngine
from yilian.analytics.refresh import refresh

SYNTHEA = Path(__file__).resolve().parents[2] / "shared/data/fhir/synthea-r4"
STAMP = "2026-01-01T00:00:00Z"
CHANGED_STAMP = "2026-02-01T00:00:00Z"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
COPY = "\u0000"  # placeholder for the copy number inside the templates

INDICATORS = {
    "encounters per week by class": """
        SELECT date_trunc('week', CAST(period_start AS TIMESTAMP)) AS week, class_code,
               count(*) AS n
        FROM encounters GROUP BY ALL ORDER BY week, class_code""",
    "condition prevalence by code and age band": """
        SELECT c.code, c.display, 10 * (date_diff('year', CAST(p.birth_date AS DATE),
               DATE '2026-01-01') // 10) AS age_band, count(DISTINCT c.patient) AS patients
        FROM conditions c JOIN patients p ON c.patient = 'Patient/' || p.id
        GROUP BY ALL ORDER BY patients DESC LIMIT 50""",
}


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def templates() -> list[tuple[str, str]]:
    """(resource type, JSON text with every Synthea uuid suffixed by the copy placeholder)."""
    out: list[tuple[str, str]] = []
    for path in sorted(SYNTHEA.glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        types = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in bundle["entry"]
        }
        for entry in bundle["entry"]:
            resource = entry["resource"]
            resource["meta"] = {"lastUpdated": STAMP}
            text = json.dumps(resource, separators=(",", ":"))
            for full_url, key in types.items():
                text = text.replace(f'"{full_url}"', f'"{key}"')
            text = _UUID.sub(lambda m: m.group(0) + "-" + COPY, text)
            out.append((resource["resourceType"], text))
    return out


def write_export(folder: Path, copies: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    items = templates()
    files: dict[str, IO[str]] = {}
    try:
        for rtype in {t for t, _ in items}:
            files[rtype] = (folder / f"{rtype}.ndjson").open(
                "w", encoding="utf-8", buffering=1 << 20
            )
        for k in range(copies):
            suffix = str(k)
            for rtype, text in items:
                files[rtype].write(text.replace(COPY, suffix) + "\n")
    finally:
        for handle in files.values():
            handle.close()
    return copies * len(items)


def write_changes(export: Path, since: Path, fraction: float, seed: int = 4) -> tuple[int, int]:
    """A ``_since`` export: ``fraction`` of lines changed (newer lastUpdated); 1 in 10 deleted.

    Deleted resources go to ``deleted.ndjson`` as Bulk Data v2 ``deleted`` Bundles
    (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#response---complete-status).
    """
    rng = random.Random(seed)
    since.mkdir(parents=True, exist_ok=True)
    changed = deleted = 0
    with (since / "deleted.json").open("w", encoding="utf-8") as gone:
        for path in sorted(export.glob("*.ndjson")):
            with path.open(encoding="utf-8") as src, (since / path.name).open("w") as dst:
                for line in src:
                    if rng.random() >= fraction:
                        continue
                    resource = json.loads(line)
                    if rng.random() < 0.1:
                        entry = {"request": {"method": "DELETE", "url": _key(resource)}}
                        gone.write(json.dumps({"resourceType": "Bundle", "entry": [entry]}))
                        gone.write("\n")
                        deleted += 1
                        continue
                    resource["meta"] = {"lastUpdated": CHANGED_STAMP}
                    resource["status"] = resource.get("status", "final")
                    dst.write(json.dumps(resource, separators=(",", ":")) + "\n")
                    changed += 1
    return changed, deleted


def _key(resource: dict[str, object]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def timed_refresh(engine: Engine, source: Path, out: Path, **kw: object) -> float:
    start = time.perf_counter()
    summary = refresh(engine, source, out, **kw)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    print(f"  {summary.mode}: {summary.resources:,} resources read, rows {dict(summary.rows)}")
    return elapsed


def indicator_latency(views: Path, runs: int) -> Iterator[tuple[str, float, float]]:
    con = duckdb.connect()
    for path in views.glob("*.parquet"):
        con.execute(f"CREATE VIEW {path.stem} AS SELECT * FROM read_parquet('{path}')")
    for name, sql in INDICATORS.items():
        con.execute(sql).fetchall()  # warm the file cache
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            con.execute(sql).fetchall()
            samples.append((time.perf_counter() - start) * 1000)
        cuts = statistics.quantiles(samples, n=100)
        yield name, cuts[49], cuts[94]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=270, help="Synthea replicas (5,521 each)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/yilian-bench-analytics"))
    parser.add_argument("--reuse", action="store_true", help="keep an existing export")
    parser.add_argument("--repeat", type=int, default=2, help="full refreshes per engine")
    parser.add_argument("--spark", action="store_true", help="also run the Spark full refresh")
    parser.add_argument("--runs", type=int, default=100, help="indicator query runs")
    args = parser.parse_args()

    export, since, views = args.work / "export", args.work / "since", args.work / "views"
    if not (args.reuse and export.exists()):
        shutil.rmtree(args.work, ignore_errors=True)
        start = time.perf_counter()
        total = write_export(export, args.copies)
        size = sum(p.stat().st_size for p in export.glob("*.ndjson"))
        print(
            f"export: {total:,} resources, {size / 1e9:.2f} GB, "
            f"written in {time.perf_counter() - start:.1f} s"
        )
    total = sum(1 for p in export.glob("*.ndjson") for _ in p.open(encoding="utf-8"))
    print(f"workload: {total:,} resources in {export} ({time.strftime('%Y-%m-%d')})")

    full = []
    for i in range(args.repeat):
        shutil.rmtree(views, ignore_errors=True)
        engine = DuckDBEngine()
        before = load()
        elapsed = timed_refresh(engine, export, views)
        engine.close()
        full.append(elapsed)
        print(
            f"duckdb full #{i + 1}: {elapsed:.1f} s, {total / elapsed:,.0f} resources/s "
            f"({before} → {load()})"
        )

    shutil.rmtree(since, ignore_errors=True)
    changed, deleted = write_changes(export, since, 0.01)
    engine = DuckDBEngine()
    before = load()
    elapsed = timed_refresh(
        engine, since, views, incremental=True, deleted=[since / "deleted.json"]
    )
    engine.close()
    print(
        f"duckdb incremental ({changed:,} changed, {deleted:,} deleted): {elapsed:.2f} s = "
        f"{100 * elapsed / min(full):.1f}% of full ({before} → {load()})"
    )

    for name, p50, p95 in indicator_latency(views, args.runs):
        print(f"indicator '{name}': p50 {p50:.1f} ms, p95 {p95:.1f} ms ({load()})")

    if args.spark:
        spark_views = args.work / "views-spark"
        shutil.rmtree(spark_views, ignore_errors=True)
        engine = SparkEngine()
        before = load()
        elapsed = timed_refresh(engine, export, spark_views)
        print(
            f"spark full: {elapsed:.1f} s, {total / elapsed:,.0f} resources/s, "
            f"{elapsed / min(full):.1f}× DuckDB ({before} → {load()})"
        )


if __name__ == "__main__":
    main()
