"""Booking throughput and correctness under load: ``POST /fhir/Appointment`` on PostgreSQL.

Builds a fresh PostgreSQL database with a small care network, ``--schedules`` hospital schedules
of slots over the next working days (20 % reserved for community referrals, from the reservation
policy) and family-doctor contracts, then serves the app with ``yilian serve --workers N`` and
fires ``--racers`` booking requests at every slot, shuffled, from ``--concurrency`` concurrent
HTTP clients on loopback — as a CHC family doctor (bearer token), so reserved slots are open to
him. Every slot must be won exactly once: the run checks that the number of 201s equals the
number of booked slots and of Appointments, that no slot has two Appointments, and that every
loser got a 409. A bounded run: it ends when every request is answered. It reports the CPU
seconds the run cost the server processes, the PostgreSQL backends and the load generator
itself (this process, one asyncio thread), so their shares of the 2 cores are known. Usage:

    .venv/bin/python bench/referral_booking.py [--schedules 24] [--racers 2] [--concurrency 32]
        [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from yilian.auth.principal import Role
from yilian.auth.service import create_user, issue_token
from yilian.db import make_engine, session_factory, unit_of_work
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.referral.booking import install
from yilian.referral.contracts import SignRequest, sign
from yilian.referral.slots import SlotPlan, generate_slots
from yilian.schema import upgrade_to_head
from yilian.synth.facilities import DEPARTMENTS

ADMIN = os.environ.get("YILIAN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PATIENTS = 40
YILIAN = str(Path(sys.executable).with_name("yilian"))


def tier(code: str) -> dict[str, Any]:
    return {"coding": [{"system": "http://yilian.health/fhir/CodeSystem/organization-tier",
                        "code": code}]}  # fmt: skip


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one run (its URL), dropped at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def working_days(count: int) -> list[dt.date]:
    """Up to ``count`` working days from tomorrow, all inside the public booking window (7 days
    ahead, to the minute): from a Tuesday the fifth working day is the next Tuesday, whose slots
    open later today — 192 of 1,560 requests were refused ``slot-booking-not-open`` (403)."""
    days, day = [], dt.date.today() + dt.timedelta(days=1)
    while len(days) < count and day < dt.date.today() + dt.timedelta(days=7):
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def build(url: str, schedules: int) -> tuple[list[str], str]:
    """The database: network, contracts, slots; returns the slot ids and a doctor's token."""
    engine = make_engine(url)
    upgrade_to_head(engine)
    runtime = Runtime(engine, "http://bench/fhir")
    install(runtime)
    ctx = RequestContext.system("system/bench")
    with runtime.transaction(ctx) as svc:
        for key, code in (("tongren", "district-regional"), ("huashan", "municipal"),
                          ("chc-xinhua", "community")):  # fmt: skip
            svc.store.update("Organization", key, {"resourceType": "Organization", "id": key,
                                                   "name": key, "type": [tier(code)]})  # fmt: skip
            svc.store.update("Location", key, {"resourceType": "Location", "id": key,
                "managingOrganization": {"reference": f"Organization/{key}"}})  # fmt: skip
        svc.store.update(
            "Practitioner", "dr-chen", {"resourceType": "Practitioner", "id": "dr-chen"}
        )
        for n in range(PATIENTS):
            pid = f"bench-p{n}"
            svc.store.update("Patient", pid, {"resourceType": "Patient", "id": pid,
                                              "birthDate": "1950-01-01"})  # fmt: skip
            sign(svc.store, SignRequest(pid, "dr-chen", "chc-xinhua", "tongren", "huashan",
                                        dt.date.today()))  # fmt: skip
    days = working_days(5)  # inside the public window of 7 days: every slot is bookable now
    slots: list[str] = []
    plans = [(d, level) for d in DEPARTMENTS for level in ("expert", "general")][:schedules]
    for department, level in plans:
        with runtime.transaction(ctx) as svc:
            plan = SlotPlan("tongren", department, "tongren", days[0], days[-1], level)
            slots += generate_slots(svc, plan).created
    with unit_of_work(session_factory(engine)) as session:
        user = create_user(session, "bench-fd", Role.FAMILY_DOCTOR, practitioner_id="dr-chen",
                           organization_id="chc-xinhua")  # fmt: skip
        token = issue_token(session, user).value
    engine.dispose()
    return slots, token


def appointment(slot: str, patient: str) -> dict[str, Any]:
    start = dt.datetime.strptime(slot[-12:], "%Y%m%d%H%M").replace(
        tzinfo=dt.timezone(dt.timedelta(hours=8))
    )
    return {"resourceType": "Appointment", "status": "booked", "start": start.isoformat(),
            "end": (start + dt.timedelta(minutes=15)).isoformat(),
            "slot": [{"reference": f"Slot/{slot}"}],
            "participant": [{"actor": {"reference": f"Patient/{patient}"},
                             "status": "accepted"}]}  # fmt: skip


async def fire(port: int, token: str, jobs: list[tuple[str, str]], concurrency: int
               ) -> tuple[Counter[int], list[float], float, dict[str, int]]:  # fmt: skip
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    winners: Counter[str] = Counter()
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(
        base_url=base, timeout=120, limits=limits, headers=headers
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                slot, patient = queue.get_nowait()
                began = time.perf_counter()
                response = await client.post("/fhir/Appointment", json=appointment(slot, patient))
                latencies.append(time.perf_counter() - began)
                statuses[response.status_code] += 1
                if response.status_code == 201:
                    winners[slot] += 1
                elif response.status_code != 409:
                    print(f"unexpected {response.status_code}: {response.text[:300]}")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return statuses, latencies, elapsed, dict(winners)


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (the uvicorn supervisor's workers), from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds so far of each live process (Linux /proc)."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def backend_pids(url: str) -> list[int]:
    """The PostgreSQL client backends connected to the bench database."""
    engine = create_engine(url)
    with engine.connect() as conn:
        pids = conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )).scalars().all()  # fmt: skip
    engine.dispose()
    return [int(p) for p in pids]


def used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two samples; a process born in between counts from zero."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def wait_ready(port: int, token: str) -> None:
    for _ in range(600):
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/fhir/metadata",
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not start")


def verify(url: str) -> tuple[int, int, int]:
    """(appointments, busy slots, slots with more than one appointment), straight from SQL."""
    engine = create_engine(url)
    with engine.connect() as conn:
        appointments = conn.execute(text(
            "SELECT count(*) FROM fhir_resource WHERE res_type = 'Appointment' AND NOT deleted"
        )).scalar_one()  # fmt: skip
        busy = conn.execute(text(
            "SELECT count(*) FROM fhir_resource "
            "WHERE res_type = 'Slot' AND content->>'status' = 'busy'"
        )).scalar_one()  # fmt: skip
        doubles = conn.execute(text(
            "SELECT count(*) FROM (SELECT content->'slot'->0->>'reference' AS slot "
            "FROM fhir_resource WHERE res_type = 'Appointment' AND NOT deleted "
            "GROUP BY 1 HAVING count(*) > 1) d"
        )).scalar_one()  # fmt: skip
    engine.dispose()
    return int(appointments), int(busy), int(doubles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=24, help="schedules of 5 days x 26 slots")
    parser.add_argument("--racers", type=int, default=2, help="requests per slot")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with scratch_database("yilian_bench_referral") as url:
        run(args, url)


def run(args: argparse.Namespace, url: str) -> None:
    server = None
    try:
        began = time.perf_counter()
        slots, token = build(url, args.schedules)
        print(f"setup: {len(slots)} slots in {time.perf_counter() - began:.1f} s")
        rng = random.Random(5)
        jobs = [(s, f"bench-p{rng.randrange(PATIENTS)}") for s in slots for _ in range(args.racers)]
        rng.shuffle(jobs)
        env = {**os.environ, "YILIAN_DATABASE_URL": url,
               "YILIAN_BASE_URL": f"http://127.0.0.1:{args.port}"}  # fmt: skip
        server = subprocess.Popen(
            [YILIAN, "serve", "--host", "127.0.0.1", "--port", str(args.port),
             "--workers", str(args.workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_ready(args.port, token)
        servers, backends = process_tree(server.pid), backend_pids(url)
        before = cpu_seconds(servers), cpu_seconds(backends), time.process_time()
        load = Path("/proc/loadavg").read_text().split()[:3]
        statuses, latencies, elapsed, winners = asyncio.run(
            fire(args.port, token, jobs, args.concurrency)
        )
        backends = sorted(set(backends) | set(backend_pids(url)))
        server_cpu = used(before[0], cpu_seconds(servers))
        pg_cpu = used(before[1], cpu_seconds(backends))
        client_cpu = time.process_time() - before[2]
        load += Path("/proc/loadavg").read_text().split()[:3]
        appointments, busy, doubles = verify(url)
        latencies.sort()
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}, PostgreSQL; uvicorn workers {args.workers}, "
              f"{args.concurrency} concurrent clients")  # fmt: skip
        print(f"requests: {len(jobs)} ({args.racers} per slot) in {elapsed:.1f} s = "
              f"{len(jobs) / elapsed:.0f} booking requests/s")  # fmt: skip
        print(f"statuses: {dict(sorted(statuses.items()))}")
        print(f"latency: median {statistics.median(latencies) * 1000:.1f} ms, "
              f"p95 {p95 * 1000:.1f} ms")  # fmt: skip
        per = 1000 / len(jobs)
        print(
            f"CPU of the run: server {server_cpu:.1f} s ({server_cpu * per:.1f} ms/request), "
            f"PostgreSQL backends {pg_cpu:.1f} s ({pg_cpu * per:.1f} ms/request), load "
            f"generator {client_cpu:.1f} s ({client_cpu * per:.1f} ms/request); "
            f"{(server_cpu + pg_cpu + client_cpu) / elapsed:.2f} of the 2 cores busy with it"
        )
        print(f"load average before/after (1, 5, 15 min): {' '.join(load[:3])} / "
              f"{' '.join(load[3:])}")  # fmt: skip
        print(f"slots won: {len(winners)} of {len(slots)}; max wins per slot "
              f"{max(winners.values(), default=0)}")  # fmt: skip
        print(f"database: {appointments} appointments, {busy} busy slots, "
              f"{doubles} slots with two or more appointments")  # fmt: skip
        correct = (
            statuses[201] == len(slots) == appointments == busy == len(winners)
            and doubles == 0
            and statuses[409] == len(jobs) - len(slots)
        )
        print("double bookings: 0 — every slot won exactly once" if correct else "FAILED")
        if not correct:
            raise SystemExit(1)
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
