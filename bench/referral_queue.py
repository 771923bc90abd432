"""The hospital referral desk's queue with 10,000 open referrals: latency on PostgreSQL or SQLite.

Builds a fresh database (``--backend``) holding ``--open`` open up-referrals (ServiceRequest +
Task, random urgency, 20 % from contracted residents' own family doctors, waiting up to 60 days)
to one hospital, bulk-loaded with ``yilian load`` and ANALYZEd; then serves the app (uvicorn, one
process) and times, as the hospital's referral-desk specialist over loopback HTTP, ``--runs``
requests each of the queue API (``GET /api/referral/queue?limit=50``, first and a middle page)
and the queue page (``GET /referral/queue``, 50 a page, signed in through the form). Prints
median and p95, and the CPU of the server process and of the PostgreSQL backends serving the
bench database over the timed requests (per request: with the cores to itself a request costs
about their sum). Usage:

    .venv/bin/python bench/referral_queue.py [--open 10000] [--runs 40] [--backend sqlite]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from referral_booking import backend_pids, cpu_seconds, used  # noqa: E402

from yilian.auth.principal import Role
from yilian.auth.service import create_user, issue_token
from yilian.db import make_engine, session_factory, unit_of_work
from yilian.fhir import systems
from yilian.schema import upgrade_to_head

ADMIN = os.environ.get("YILIAN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "bench-queue-password"
YILIAN = str(Path(sys.executable).with_name("yilian"))


def organizations() -> list[dict[str, Any]]:
    out = []
    for key, tier in (("tongren", "district-regional"), ("chc-xinhua", "community")):
        out.append(
            {
                "resourceType": "Organization",
                "id": key,
                "name": key,
                "type": [{"coding": [{"system": systems.ORGANIZATION_TIER, "code": tier}]}],
            }
        )
    return out  # fmt: skip


def referrals(count: int, rng: random.Random) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    out: list[dict[str, Any]] = organizations()
    for n in range(count):
        authored = (now - dt.timedelta(minutes=rng.randrange(60 * 24 * 60))).isoformat()
        priority = rng.choices(["routine", "urgent", "asap", "stat"], [80, 15, 4, 1])[0]
        patient = {"reference": f"Patient/bench-p{n % 3000}"}
        sid = f"bench-sr-{n}"
        out.append({
            "resourceType": "ServiceRequest", "id": sid, "status": "active", "intent": "order",
            "code": {"coding": [{"system": systems.REFERRAL_DIRECTION, "code": "up"}]},
            "priority": priority, "subject": patient, "authoredOn": authored,
            "performer": [{"reference": "Organization/tongren"}],
        })  # fmt: skip
        tags = [{"system": systems.REFERRAL_DIRECTION, "code": "up"}]
        if rng.random() < 0.2:
            tags.append({"system": systems.REFERRAL_PRIORITY_GROUP,
                         "code": "contracted-family-doctor"})  # fmt: skip
        out.append({
            "resourceType": "Task", "id": f"bench-task-{n}", "meta": {"tag": tags},
            "status": rng.choice(["requested", "received"]), "intent": "order",
            "priority": priority, "focus": {"reference": f"ServiceRequest/{sid}"}, "for": patient,
            "authoredOn": authored, "requester": {"reference": "Organization/chc-xinhua"},
            "owner": {"reference": "Organization/tongren"},
        })  # fmt: skip
    return out


def timed(client: httpx.Client, url: str, runs: int, check: str) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200 and check in response.text, response.text[:300]
    times.sort()
    return statistics.median(times) * 1000, times[int(0.95 * (len(times) - 1))] * 1000


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_cpu(url: str) -> dict[int, float]:
    """CPU seconds so far of the PostgreSQL backends serving the bench database (none: SQLite)."""
    return cpu_seconds(backend_pids(url)) if url.startswith("postgresql") else {}


def cpu_line(pid: int, url: str, before: tuple[float, dict[int, float]], runs: int) -> str:
    server = (server_cpu(pid) - before[0]) / runs * 1000
    database = used(before[1], database_cpu(url)) / runs * 1000
    if not url.startswith("postgresql"):
        return f"server CPU {server:.0f} ms per request (SQLite works inside it)"
    return f"CPU per request: server {server:.0f} ms, PostgreSQL {database:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, default=10_000, help="open referrals to the hospital")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    args = parser.parse_args()
    name = f"yilian_bench_queue_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    scratch = tempfile.TemporaryDirectory()
    if args.backend == "postgresql":
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{scratch.name}/queue.sqlite"
    server = None
    try:
        engine = make_engine(url)
        upgrade_to_head(engine)
        with unit_of_work(session_factory(engine)) as session:
            desk = create_user(session, "bench-desk", Role.SPECIALIST, password=PASSWORD,
                               practitioner_id="dr-desk", organization_id="tongren")  # fmt: skip
            token = issue_token(session, desk).value
        engine.dispose()
        env = {**os.environ, "YILIAN_DATABASE_URL": url}
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "referrals.ndjson"
            rows = referrals(args.open, random.Random(7))
            path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
            began = time.perf_counter()
            subprocess.run([YILIAN, "load", str(path)], env=env, check=True,
                           capture_output=True)  # fmt: skip
            print(f"loaded {len(rows):,} resources in {time.perf_counter() - began:.1f} s")
        # Planner statistics, as autovacuum would gather them after a load of this size: without
        # them PostgreSQL picks nested loops over the index tables (seconds per search).
        with make_engine(url).connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "yilian.app:create_app", "--factory", "--host",
             "127.0.0.1", "--port", str(args.port), "--log-level", "warning", "--no-access-log"],
            env=env,
        )  # fmt: skip
        base = f"http://127.0.0.1:{args.port}"
        for _ in range(600):
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        api = httpx.Client(base_url=base, timeout=300, headers={"Authorization": f"Bearer {token}"})
        first = api.get("/api/referral/queue?limit=50").json()["tasks"]
        ranks = [t["priority"] for t in first]
        print(f"first of the queue: {ranks[:5]} … ({len(first)} shown)")
        print(f"queue total: {api.get('/api/referral/queue?limit=1').json()['total']:,}")
        for query in ("limit=50", f"limit=50&offset={args.open // 2}"):
            cpu = server_cpu(server.pid), database_cpu(url)
            median, p95 = timed(api, f"/api/referral/queue?{query}", args.runs, "tasks")
            print(f"GET /api/referral/queue?{query}: median {median:.0f} ms, p95 {p95:.0f} ms "
                  f"({cpu_line(server.pid, url, cpu, args.runs)})")  # fmt: skip
        page = httpx.Client(base_url=base, timeout=300, follow_redirects=False)
        token_field = re.search(r'name="csrf_token" value="([^"]+)"', page.get("/login").text)
        assert token_field
        page.post("/login", data={"username": "bench-desk", "password": PASSWORD,
                                  "csrf_token": token_field.group(1), "next": "/"})  # fmt: skip
        cpu = server_cpu(server.pid), database_cpu(url)
        median, p95 = timed(page, "/referral/queue", args.runs, 'id="queue"')
        print(f"GET /referral/queue (page, 50 rows): median {median:.0f} ms, p95 {p95:.0f} ms "
              f"({cpu_line(server.pid, url, cpu, args.runs)}); load average "
              f"{Path('/proc/loadavg').read_text().split()[0]}")  # fmt: skip
    finally:
        if server is not None:
            server.terminate()
            server.wait(120)
        if args.backend == "postgresql":
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        scratch.cleanup()


if __name__ == "__main__":
    main()
