"""Where one booking's time goes: SQL statements per ``POST /fhir/Appointment`` and a cProfile.

Builds the same PostgreSQL database as ``bench/referral_booking.py`` (network, contracts, slots),
then books ``--bookings`` slots one after the other in-process (FastAPI ``TestClient``, the whole
production path: bearer token, access policy, booking hook, audit chain) and ``--losers``
requests for slots already taken (the 409 path). Prints the statements per request, grouped by
their first words, and the top of the profile by cumulative time. Usage:

    .venv/bin/python bench/referral_booking_profile.py [--bookings 50] [--losers 20] [--top 30]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).parent))
from referral_booking import appointment, build, scratch_database  # noqa: E402

from yilian.app import create_app  # noqa: E402
from yilian.config import load_settings  # noqa: E402
from yilian.db import make_engine  # noqa: E402


def statement_kind(statement: str) -> str:
    """``SELECT fhir_resource``, ``DELETE fhir_index_token``, … — enough to see the round trips."""
    words = statement.split()
    verb = words[0].upper() if words else "?"
    table = re.search(r"(?:FROM|INTO|UPDATE)\s+\"?(\w+)", statement, re.IGNORECASE)
    return f"{verb} {table.group(1) if table else ''}".strip()


async def inline(fn: Any, *args: Any, **_: Any) -> Any:
    """``anyio.to_thread.run_sync`` on the calling thread, so cProfile sees the request's work."""
    return fn(*args)


async def post_all(app: Any, token: str, jobs: list[tuple[str, str]], expected: int) -> None:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers=headers
    ) as c:
        for slot, patient in jobs:
            response = await c.post("/fhir/Appointment", json=appointment(slot, patient))
            assert response.status_code == expected, response.text[:300]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, default=50)
    parser.add_argument("--losers", type=int, default=20)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumulative", help="tottime, cumulative, …")
    parser.add_argument("--show", action="store_true", help="print the statements of one booking")
    args = parser.parse_args()
    with scratch_database("yilian_bench_bprof") as url:
        slots, token = build(url, 1)
        engine = make_engine(url)
        os.environ["YILIAN_DATABASE_URL"] = url
        app = create_app(load_settings(), engine=engine)
        anyio.to_thread.run_sync = inline  # type: ignore[assignment]
        chosen = slots[: args.bookings + 1]
        asyncio.run(post_all(app, token, [(chosen.pop(), "bench-p0")], 201))  # warm the caches
        kinds: Counter[str] = Counter()

        shown: list[str] = []

        def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            kinds[statement_kind(statement)] += 1
            if args.show and len(shown) < 200:
                shown.append(" ".join(statement.split())[:240])

        event.listen(engine, "before_cursor_execute", count)
        jobs = [(slot, f"bench-p{n % 40}") for n, slot in enumerate(chosen)]
        # CPU time, not wall: on a shared machine the waits for PostgreSQL would dominate.
        profile = cProfile.Profile(time.process_time)
        cpu, wall = time.process_time(), time.perf_counter()
        profile.enable()
        asyncio.run(post_all(app, token, jobs, 201))
        profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if args.show:
            print("\n".join(shown[: round(sum(kinds.values()) / args.bookings)]))
        won = sum(kinds.values())
        print(f"{args.bookings} bookings: {won / args.bookings:.1f} statements each; "
              f"{wall / args.bookings * 1000:.1f} ms wall, {cpu / args.bookings * 1000:.1f} ms "
              "CPU of this process each (profiled: cProfile about doubles it)")  # fmt: skip
        for kind, n in kinds.most_common():
            print(f"  {n / args.bookings:5.1f}  {kind}")
        kinds.clear()
        asyncio.run(post_all(app, token, jobs[: args.losers], 409))
        if args.losers:
            print(f"{args.losers} losers (409): "
                  f"{sum(kinds.values()) / args.losers:.1f} statements each")  # fmt: skip
        # BPROF_FILTER=yilian: only our own functions (a regular expression on the file/name)
        only = os.environ.get("BPROF_FILTER", "")
        pstats.Stats(profile).sort_stats(args.sort).print_stats(only, args.top)
        engine.dispose()


if __name__ == "__main__":
    main()
