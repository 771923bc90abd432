"""View materialisation speed on the synthetic district: full and incremental refresh, DuckDB vs
Spark, and indicator-query latency over the materialised views.

Workload: a ``yilian synth`` output directory (one NDJSON file per resource type, as Bulk Data
``$export`` writes), e.g. ``yilian synth --scale 1.0 --out /tmp/district`` (≈ 693k residents,
3 years of records). Then:

1. full refresh of the core views on DuckDB (``refresh()``): wall time, resources/s (over every
   resource in the export, and over the resources of the types the views read);
2. incremental refresh after 1% of the views' resources change: a ``_since`` export holding only
   the changed resources (new ``meta.lastUpdated``; 1 in 10 of them deleted instead, listed in
   a Bulk Data ``deleted`` file), added to the full refresh as delta parts (viewstore.py);
3. two indicator queries over the materialised Parquet views on DuckDB — contract coverage by
   subdistrict and age band, visits by care-network tier per week — p50/p95 over ``--runs``;
4. with ``--spark``: the same full refresh on Spark local mode (ratio to DuckDB).

Prints numbers and the machine load (``os.getloadavg``: other work shares the 2 cores);
asserts nothing.

    .venv/bin/python bench/analytics_refresh.py --district /tmp/district --work /tmp/bench-views
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from yilian.analytics import viewstore
from yilian.analytics.catalog import core_views
from yilian.analytics.engines import DuckDBEngine, Engine, SparkEngine
from yilian.analytics.refresh import files_by_type, refresh

CHANGED_STAMP = "2026-11-01T00:00:00Z"  # after the district's default end date (2026-10-31)
AS_OF = "2026-10-31"  # the district's end date: ages are computed at it

INDICATORS = {
    # 签约覆盖率: share of residents with an active family-doctor contract.
    "contract coverage by subdistrict and age band": f"""
        WITH p AS (
            SELECT 'Patient/' || id AS patient, subdistrict, subdistrict_name,
                   date_diff('year', CAST(birth_date AS DATE), DATE '{AS_OF}') AS age
            FROM patients WHERE deceased IS NOT TRUE)
        SELECT subdistrict, subdistrict_name,
               CASE WHEN age < 15 THEN '0-14' WHEN age < 60 THEN '15-59'
                    WHEN age < 65 THEN '60-64' ELSE '65+' END AS age_band,
               count(*) AS residents, count(c.id) AS contracted,
               round(100.0 * count(c.id) / count(*), 1) AS coverage_pct
        FROM p LEFT JOIN contracts c ON c.patient = p.patient AND c.status = 'active'
        GROUP BY ALL ORDER BY subdistrict, age_band""",
    # Visits (ambulatory encounters) by care-network tier per ISO week, local dates
    # (period_start_date: the typed local date viewstore adds beside each dateTime column).
    # Counted per week and organisation first, then rolled up by the organisation's tier (a
    # department takes its facility's): the join and the tier lookup run on ~30k groups
    # instead of 4.7 M rows (same rows as joining first; 2026-12-08: p50 619 -> 359 ms).
    "visits by tier per week": """
        WITH org AS (
            SELECT 'Organization/' || o.id AS ref, coalesce(o.tier, parent.tier) AS tier
            FROM organizations o
            LEFT JOIN organizations parent ON o.part_of = 'Organization/' || parent.id),
        weekly AS (
            SELECT date_trunc('week', period_start_date) AS week, organization, count(*) AS n
            FROM encounters WHERE class_code = 'AMB' GROUP BY ALL)
        SELECT week, org.tier, sum(n) AS visits
        FROM weekly JOIN org ON weekly.organization = org.ref
        GROUP BY ALL ORDER BY week, tier""",
}


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def count_lines(path: Path) -> int:
    n = 0
    with path.open("rb") as f:
        while block := f.read(1 << 24):
            n += block.count(b"\n")
    return n


def write_changes(
    files: list[Path], since: Path, fraction: float, seed: int = 4
) -> tuple[int, int]:
    """A ``_since`` export: ``fraction`` of lines changed (newer lastUpdated); 1 in 10 deleted.

    Deleted resources go to ``deleted.json`` as Bulk Data v2 ``deleted`` Bundles
    (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#response---complete-status).
    """
    rng = random.Random(seed)
    since.mkdir(parents=True, exist_ok=True)
    changed = deleted = 0
    with (since / "deleted.json").open("w", encoding="utf-8") as gone:
        for path in files:
            with path.open(encoding="utf-8") as src, (since / path.name).open("w") as dst:
                for line in src:
                    if rng.random() >= fraction:
                        continue
                    resource = json.loads(line)
                    if rng.random() < 0.1:
                        url = f"{resource['resourceType']}/{resource['id']}"
                        entry = {"request": {"method": "DELETE", "url": url}}
                        gone.write(json.dumps({"resourceType": "Bundle", "entry": [entry]}) + "\n")
                        deleted += 1
                        continue
                    resource["meta"] = {"lastUpdated": CHANGED_STAMP}
                    if "status" in resource and resource["resourceType"] == "Encounter":
                        resource["status"] = "entered-in-error"
                    dst.write(json.dumps(resource, ensure_ascii=False) + "\n")
                    changed += 1
    return changed, deleted


def timed_refresh(engine: Engine, source: Path, out: Path, **kw: object) -> float:
    """Wall seconds; also prints this process's CPU seconds (all DuckDB threads, not Spark's
    JVM), which stay meaningful when other work takes the cores."""
    start, cpu = time.perf_counter(), time.process_time()
    summary = refresh(engine, source, out, **kw)  # type: ignore[arg-type]
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"  {summary.mode}: {summary.resources:,} resources read in {elapsed:.1f} s wall, "
        f"{used:.1f} s CPU of this process ({summary.resources / max(used, 1e-9):,.0f} "
        f"resources per CPU-second); rows {dict(summary.rows)}"
    )
    return elapsed


def indicator_latency(views: Path, runs: int) -> Iterator[tuple[str, int, float, float]]:
    con = duckdb.connect()
    viewstore.register(con, views)  # incremental parts merged on read
    for name, sql in INDICATORS.items():
        rows = len(con.execute(sql).fetchall())  # warm the file cache
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            con.execute(sql).fetchall()
            samples.append((time.perf_counter() - start) * 1000)
        cuts = statistics.quantiles(samples, n=100)
        yield name, rows, cuts[49], cuts[94]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--district", type=Path, required=True, help="yilian synth output")
    parser.add_argument("--work", type=Path, default=Path("/tmp/yilian-bench-analytics"))
    parser.add_argument("--repeat", type=int, default=1, help="full refreshes on DuckDB")
    parser.add_argument("--spark", action="store_true", help="also run the Spark full refresh")
    parser.add_argument("--runs", type=int, default=100, help="indicator query runs")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # progress in logs

    files = sorted(args.district.glob("*.ndjson"))
    total = sum(count_lines(p) for p in files)
    types = {str(v["resource"]) for v in core_views().values()}
    view_files = [p for paths in files_by_type(files, types).values() for p in paths]
    in_views = sum(count_lines(p) for p in view_files)
    size = sum(p.stat().st_size for p in files) / 1e9
    print(
        f"workload: {total:,} resources ({size:.2f} GB) in {args.district}; "
        f"{in_views:,} of the {len(types)} types the views read; {time.strftime('%Y-%m-%d %H:%M')}"
    )
    views, since = args.work / "views", args.work / "since"

    full: list[float] = []
    for i in range(args.repeat):
        shutil.rmtree(views, ignore_errors=True)
        engine = DuckDBEngine(threads=args.threads)
        before = load()
        elapsed = timed_refresh(engine, args.district, views)
        engine.close()
        full.append(elapsed)
        print(
            f"duckdb full #{i + 1}: {elapsed:.1f} s, {total / elapsed:,.0f} resources/s "
            f"(export), {in_views / elapsed:,.0f} resources/s (view types) ({before} → {load()})"
        )

    shutil.rmtree(since, ignore_errors=True)
    changed, deleted = write_changes(view_files, since, 0.01)
    engine = DuckDBEngine(threads=args.threads)
    before = load()
    elapsed = timed_refresh(
        engine, since, views, incremental=True, deleted=[since / "deleted.json"]
    )
    engine.close()
    print(
        f"duckdb incremental ({changed:,} changed, {deleted:,} deleted): {elapsed:.1f} s = "
        f"{100 * elapsed / min(full):.1f}% of full ({before} → {load()})"
    )

    for name, rows, p50, p95 in indicator_latency(views, args.runs):
        print(f"indicator '{name}' ({rows} rows): p50 {p50:.1f} ms, p95 {p95:.1f} ms ({load()})")

    if args.spark:
        spark_views = args.work / "views-spark"
        shutil.rmtree(spark_views, ignore_errors=True)
        spark = SparkEngine()
        before = load()
        elapsed = timed_refresh(spark, args.district, spark_views)
        print(
            f"spark full: {elapsed:.1f} s, {total / elapsed:,.0f} resources/s, "
            f"{elapsed / min(full):.1f}× DuckDB ({before} → {load()})"
        )


if __name__ == "__main__":
    main()
