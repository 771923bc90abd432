"""Time the web home pages' counts (yilian.web.figures) on a loaded store.

Usage: python bench/web_figures.py DATABASE_URL [--today YYYY-MM-DD] [--repeat N]
Prints one line per figure: median and worst wall time of N runs, and the store's size.
Read-only; point it at a database loaded with the synthetic district (yilian synth + load).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from yilian.config import normalise_database_url
from yilian.db import make_engine, session_factory
from yilian.web import figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--today", default=None, help="default: the latest encounter's day")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    engine = make_engine(normalise_database_url(args.url))
    with session_factory(engine)() as session:
        counts = dict(
            session.execute(
                text("SELECT res_type, count(*) FROM fhir_resource GROUP BY res_type")
            ).all()
        )
        latest = session.execute(
            text("SELECT max(low) FROM idx_date WHERE res_type='Encounter' AND param='date'")
        ).scalar_one()
        doctor = session.execute(
            text(
                "SELECT target_id FROM idx_reference WHERE res_type='EpisodeOfCare' AND "
                "param='care-manager' GROUP BY target_id ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar_one()
    if isinstance(latest, str):
        latest = dt.datetime.fromisoformat(latest)
    today = dt.date.fromisoformat(args.today) if args.today else latest.date()
    total = sum(counts.values())
    print(f"store: {total:,} resources, {counts.get('Patient', 0):,} patients; today = {today}")
    with session_factory(engine)() as session:
        page = figures.panel_page(session, doctor, 0, 20)[1]
    cases: dict[str, Callable[[Any], Any]] = {
        "district_figures (manager)": lambda s: figures.district_figures(s, today),
        "syndrome_weeks 26 (CDC)": lambda s: figures.syndrome_weeks(s, today),
        "panel_page (family doctor)": lambda s: figures.panel_page(s, doctor, 0, 20),
        "last_visits 20 (family doctor)": lambda s: figures.last_visits(s, page),
        "organization_figures tongren": lambda s: figures.organization_figures(s, "tongren", today),
        "practitioners_by_role tongren": lambda s: figures.practitioners_by_role(s, "tongren"),
    }
    for name, case in cases.items():
        times = []
        for _ in range(args.repeat):
            with session_factory(engine)() as session:
                start = time.perf_counter()
                case(session)
                times.append(time.perf_counter() - start)
        print(f"{name:34s} median {statistics.median(times) * 1000:8.1f} ms   "
              f"worst {max(times) * 1000:8.1f} ms")  # fmt: skip
    engine.dispose()


if __name__ == "__main__":
    main()
