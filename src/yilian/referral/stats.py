"""Managers' referral figures, computed with SQL over the analytics views (issue #4's catalogue).

Flows up and down by facility and month, referral status and completion, waiting times, reserved
slots used / returned to the public pool, down-referral counts (the national assessment counts
down-referred patients — 国考 indicator 2, china-rules.md §10). Each figure is one SQL query over
the core views ``referrals`` (derived), ``referral_tasks``, ``appointments`` and ``slots``
(docs/analytics.md) through ``yilian.analytics.query``, from either source:

- the Parquet views of the last ``yilian views refresh`` when ``YILIAN_VIEWS_DIR`` names them
  (city scale: as of that refresh's watermark);
- otherwise the views computed now over the store's referral resources (referral ServiceRequests
  and Tasks, Appointments, reserved and released Slots) — live, for a district.

Aggregates only — no personal data leaves — so the selection is read with the search engine
rather than through the user's patient-level access guard. Result recognitions are tag counts.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from yilian.analytics.engines import Engine
from yilian.analytics.query import open_views, views_over
from yilian.fhir import search as search_engine
from yilian.fhir import systems
from yilian.fhir.service import FhirService
from yilian.referral.recognition import DECLINED, OFFERED, RECOGNISED
from yilian.referral.resources import COMMUNITY_REFERRAL, RELEASED, Json

VIEWS = ("referral_requests", "referral_tasks", "appointments", "slots")
VIEWS_DIR = "YILIAN_VIEWS_DIR"
OPEN = "('requested', 'received')"
HOLDING = "('pending', 'booked', 'arrived', 'checked-in', 'fulfilled')"
DAYS = "86400.0"

FLOWS = """
SELECT r.code AS direction, split_part(coalesce(t.requester, r.requester), '/', 2) AS source,
       split_part(coalesce(r.task_owner, r.performer), '/', 2) AS target,
       left(r.authored_on, 7) AS month, count(*) AS n
FROM referrals r LEFT JOIN referral_tasks t ON t.id = r.task_id
WHERE r.code IN ('up', 'down') GROUP BY ALL ORDER BY month, direction, source, target
"""
BY_STATUS = """
SELECT code AS direction, coalesce(task_status, '?') AS status, count(*) AS n FROM referrals
WHERE code IN ('up', 'down') GROUP BY ALL ORDER BY direction, status
"""
WAITING = f"""
SELECT median(({{now}} - epoch(TRY_CAST(authored_on AS TIMESTAMPTZ))) / {DAYS}) AS open_days,
       (SELECT median((epoch(TRY_CAST(a.start AS TIMESTAMPTZ))
                       - epoch(TRY_CAST(r2.authored_on AS TIMESTAMPTZ))) / {DAYS})
        FROM appointments a JOIN referrals r2 ON a.based_on = 'ServiceRequest/' || r2.id
        WHERE r2.code = 'up' AND a.status IN {HOLDING}) AS booking_days
FROM referrals WHERE code IN ('up', 'down') AND task_status IN {OPEN}
"""
SLOTS = f"""
SELECT count(*) FILTER (WHERE channel = '{COMMUNITY_REFERRAL}' AND status = 'busy') AS used,
       count(*) FILTER (WHERE channel = '{COMMUNITY_REFERRAL}' AND status = 'free') AS unused,
       count(*) FILTER (WHERE channel = '{RELEASED}') AS returned
FROM slots
"""


def _search_all(svc: FhirService, res_type: str, params: list[tuple[str, str]]) -> Iterator[Json]:
    """Every match of a search, page by page through the search snapshot (no access guard:
    the rows only feed aggregates)."""
    bundle = search_engine.search(svc.session, res_type, [*params, ("_count", "1000")],
                                  base_url="")  # fmt: skip
    while True:
        yield from (e["resource"] for e in bundle.get("entry", []))
        following = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        if not following:
            return
        query = parse_qs(urlsplit(following[0]).query)
        bundle = search_engine.get_page(svc.session, query["_getpages"][0],
                                        int(query["_getpagesoffset"][0]), int(query["_count"][0]),
                                        base_url="")  # fmt: skip


def referral_resources(svc: FhirService) -> Iterator[Json]:
    """What the referral views read: referrals, their Tasks, Appointments, reserved Slots."""
    svc.store.flush()
    direction, channel = systems.REFERRAL_DIRECTION, systems.SLOT_CHANNEL
    yield from _search_all(svc, "ServiceRequest", [
        ("category", f"{systems.SNOMED_CT}|{systems.SNOMED_REFERRAL}")])  # fmt: skip
    yield from _search_all(svc, "Task", [("_tag", f"{direction}|up,{direction}|down")])
    yield from _search_all(svc, "Appointment", [])
    yield from _search_all(svc, "Slot", [
        ("_tag", f"{channel}|{COMMUNITY_REFERRAL},{channel}|{RELEASED}")])  # fmt: skip


def views_engine(svc: FhirService, directory: Path | None = None) -> Engine:
    """The refreshed Parquet views of ``directory`` (or ``$YILIAN_VIEWS_DIR``) when they hold
    the referral tables, else the views computed now over the store."""
    configured = directory or (Path(os.environ[VIEWS_DIR]) if os.environ.get(VIEWS_DIR) else None)
    if configured is not None and (configured / "referrals.parquet").exists():
        return open_views(configured)
    return views_over(referral_resources(svc), VIEWS)


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _count(svc: FhirService, res_type: str, params: list[tuple[str, str]]) -> int:
    svc.store.flush()
    bundle = search_engine.search(
        svc.session, res_type, [*params, ("_summary", "count")], base_url=""
    )
    return int(bundle.get("total", 0))


def summary(
    svc: FhirService, now: dt.datetime | None = None, *, views: Path | None = None
) -> dict[str, Any]:
    moment = now or dt.datetime.now(dt.UTC)
    engine = views_engine(svc, views)
    try:
        flows = engine.query(FLOWS).to_pylist()
        statuses = engine.query(BY_STATUS).to_pylist()
        waiting = engine.query(WAITING.format(now=moment.timestamp())).to_pylist()[0]
        slots = engine.query(SLOTS).to_pylist()[0]
    finally:
        engine.close()
    up_total = sum(s["n"] for s in statuses if s["direction"] == "up")
    up_done = sum(s["n"] for s in statuses if s["direction"] == "up" and s["status"] == "completed")
    return {
        "flows": [
            {
                "direction": f["direction"],
                "from": f["source"] or "?",
                "to": f["target"] or "?",
                "month": f["month"] or "?",
                "count": f["n"],
            }
            for f in flows
        ],  # fmt: skip
        "by_status": [
            {"direction": s["direction"], "status": s["status"], "count": s["n"]} for s in statuses
        ],
        "up_referrals": up_total,
        "down_referrals": sum(s["n"] for s in statuses if s["direction"] == "down"),
        "up_completion_rate": round(up_done / up_total, 4) if up_total else None,
        "open_waiting_days_median": _round(waiting["open_days"]),
        "booking_lead_days_median": _round(waiting["booking_days"]),
        "reserved_slots": {
            "used": slots["used"],
            "unused_reserved": slots["unused"],
            "returned_to_public": slots["returned"],
        },
        "recognition": {
            state: _count(
                svc, "ServiceRequest", [("_tag", f"{systems.RESULT_RECOGNITION}|{state}")]
            )
            for state in (OFFERED, RECOGNISED, DECLINED)
        },
    }
