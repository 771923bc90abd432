"""Search latency at scale on PostgreSQL: the three queries the issue sets a p95 target for.

Fills a scratch database with synthetic resources and index rows straight from SQL
(``generate_series``; the store would take hours at this size), then runs each search through
``yilian.fhir.search.search`` and reports p50/p95 and the plan. Usage:

    python bench/search_pg.py --patients 100000 [--url postgresql+psycopg://postgres@127.0.0.1/db]

Observations = 7 × patients and encounters = 2 × patients, so 100k patients ≈ 1M resources.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, aliased

from yilian.db import make_engine
from yilian.fhir.models import ResourceRow
from yilian.fhir.search import search
from yilian.fhir.search.params import parse_search
from yilian.fhir.search.sql import match_query, order_by
from yilian.schema import upgrade_to_head

FILL = """
INSERT INTO fhir_resource (pk, res_type, res_id, version_id, last_updated, deleted, content)
SELECT g, 'Patient', 'p' || g, 1, now(), false,
       jsonb_build_object('resourceType', 'Patient', 'id', 'p' || g,
                          'identifier', jsonb_build_array(jsonb_build_object(
                              'system', 'urn:mrn', 'value', 'm' || g)))
FROM generate_series(1, :p) g;
INSERT INTO idx_token (resource_pk, res_type, param, system, code)
SELECT g, 'Patient', 'identifier', 'urn:mrn', 'm' || g FROM generate_series(1, :p) g;

INSERT INTO fhir_resource (pk, res_type, res_id, version_id, last_updated, deleted, content)
SELECT :p + g, 'Observation', 'o' || g, 1, now(), false,
       jsonb_build_object('resourceType', 'Observation', 'id', 'o' || g, 'status', 'final')
FROM generate_series(1, :p * 7) g;
INSERT INTO idx_reference (resource_pk, res_type, param, target_type, target_id)
SELECT :p + g, 'Observation', prm, 'Patient', 'p' || (1 + g % :p)
FROM generate_series(1, :p * 7) g, (VALUES ('subject'), ('patient')) v(prm);
INSERT INTO idx_token (resource_pk, res_type, param, system, code)
SELECT :p + g, 'Observation', 'code', 'http://loinc.org', 'c' || (g % 20)
FROM generate_series(1, :p * 7) g;
INSERT INTO idx_date (resource_pk, res_type, param, low, high)
SELECT :p + g, 'Observation', 'date', t, t + interval '1 second'
FROM generate_series(1, :p * 7) g,
     LATERAL (SELECT timestamp '2015-01-01' + (g % 3650) * interval '1 day' AS t) d;

INSERT INTO fhir_resource (pk, res_type, res_id, version_id, last_updated, deleted, content)
SELECT :p * 8 + g, 'Encounter', 'e' || g, 1, now(), false,
       jsonb_build_object('resourceType', 'Encounter', 'id', 'e' || g, 'status', 'finished')
FROM generate_series(1, :p * 2) g;
INSERT INTO idx_reference (resource_pk, res_type, param, target_type, target_id)
SELECT :p * 8 + g, 'Encounter', prm, 'Patient', 'p' || (1 + g % :p)
FROM generate_series(1, :p * 2) g, (VALUES ('subject'), ('patient')) v(prm);
INSERT INTO idx_date (resource_pk, res_type, param, low, high)
SELECT :p * 8 + g, 'Encounter', 'date', t, t + interval '2 days'
FROM generate_series(1, :p * 2) g,
     LATERAL (SELECT timestamp '2015-01-01' + (g % 3650) * interval '1 day' AS t) d;
SELECT setval(pg_get_serial_sequence('fhir_resource', 'pk'), :p * 10);
ANALYZE;
"""


def queries(patients: int) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    def pid() -> str:
        return f"p{random.randint(1, patients)}"

    return {
        "Patient?identifier": (
            "Patient",
            [("identifier", f"urn:mrn|m{random.randint(1, patients)}")],
        ),
        "Observation?subject&code&date=ge": (
            "Observation",
            [("subject", f"Patient/{pid()}"), ("code", "http://loinc.org|c3"), ("date", "ge2018")],
        ),
        "Encounter?patient&date": ("Encounter", [("patient", pid()), ("date", "ge2016")]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--admin", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    console = Console()
    name = f"yilian_bench_search_{args.patients}"
    admin = create_engine(args.admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        fresh = exists.first() is None
        if fresh:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(args.admin.rsplit("/", 1)[0] + "/" + name)
    if fresh:
        upgrade_to_head(engine)
        with console.status(f"filling {args.patients * 10:,} resources"), engine.begin() as conn:
            for statement in FILL.split(";\n"):
                if statement.strip():
                    conn.execute(text(statement), {"p": args.patients})
    table = Table("search", "p50 ms", "p95 ms", "matches")
    plans: dict[str, str] = {}
    for label in queries(args.patients):
        timings: list[float] = []
        matches = 0
        for _ in range(args.runs):
            res_type, params = queries(args.patients)[label]
            with Session(engine) as session:
                start = time.perf_counter()
                bundle = search(session, res_type, params, base_url="http://bench/fhir")
                timings.append((time.perf_counter() - start) * 1000)
                matches = max(matches, bundle.get("total", 0))
        timings.sort()
        p95 = timings[int(len(timings) * 0.95) - 1]
        table.add_row(label, f"{statistics.median(timings):.1f}", f"{p95:.1f}", str(matches))
        res_type, params = queries(args.patients)[label]
        parsed = parse_search(res_type, params, base_url="http://bench/fhir")
        resource = aliased(ResourceRow)
        stmt = (
            match_query(parsed.sql_types, parsed.filters, resource)
            .add_columns(resource.pk, resource.content)
            .order_by(*order_by(parsed.options.sort, resource))
            .limit(21)
        )
        sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            rows = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF) " + sql)).scalars()
            plans[label] = "\n".join(rows)
    console.print(table)
    for label, plan in plans.items():
        console.rule(label)
        console.print(plan, markup=False, highlight=False)


if __name__ == "__main__":
    main()
