"""Managers' referral figures: flows by facility and month, completion, waiting, slots, recognition.

Aggregates only — no personal data leaves — so they are counted with the search engine directly
rather than through the user's patient-level access guard. The national assessment counts
down-referred patients (国考 indicator 2, china-rules.md §10), hence ``down_referrals``. At city
scale these figures belong in the SQL-on-FHIR views (docs/analytics.md); here they are computed
from the store, which is fine for a district.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from statistics import median
from typing import Any
from urllib.parse import parse_qs, urlsplit

from yilian.fhir import search as search_engine
from yilian.fhir import systems
from yilian.fhir.service import FhirService
from yilian.referral import resources as rs
from yilian.referral.recognition import DECLINED, OFFERED, RECOGNISED
from yilian.referral.resources import COMMUNITY_REFERRAL, RELEASED, Json


def _count(svc: FhirService, res_type: str, params: list[tuple[str, str]]) -> int:
    svc.store.flush()
    bundle = search_engine.search(
        svc.session, res_type, [*params, ("_summary", "count")], base_url=""
    )
    return int(bundle.get("total", 0))


def _tasks(svc: FhirService) -> list[Json]:
    """Every referral Task (both directions), page by page through the search snapshot."""
    svc.store.flush()
    tag = systems.REFERRAL_DIRECTION
    params = [("_tag", f"{tag}|up,{tag}|down"), ("_count", "1000")]
    bundle = search_engine.search(svc.session, "Task", params, base_url="")
    out: list[Json] = []
    while True:
        out += [e["resource"] for e in bundle.get("entry", [])]
        following = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        if not following:
            return out
        query = parse_qs(urlsplit(following[0]).query)
        bundle = search_engine.get_page(
            svc.session,
            query["_getpages"][0],
            int(query["_getpagesoffset"][0]),
            int(query["_count"][0]),
            base_url="",
        )


def summary(svc: FhirService, now: dt.datetime | None = None) -> dict[str, Any]:
    moment = now or dt.datetime.now(dt.UTC)
    flows: Counter[tuple[str, str, str, str]] = Counter()
    statuses: Counter[tuple[str, str]] = Counter()
    waiting: list[float] = []
    for task in _tasks(svc):
        direction = rs.tag_of(task, systems.REFERRAL_DIRECTION) or "?"
        authored = rs.parse_instant(task.get("authoredOn"))
        month = authored.astimezone(rs.CHINA_TIME).strftime("%Y-%m") if authored else "?"
        source = rs.ref_id(task.get("requester"), "Organization") or "?"
        target = rs.ref_id(task.get("owner"), "Organization") or "?"
        flows[(direction, source, target, month)] += 1
        statuses[(direction, str(task.get("status")))] += 1
        if task.get("status") in ("requested", "received") and authored:
            waiting.append((moment - authored).total_seconds() / 86400)
    up_total = sum(n for (d, _), n in statuses.items() if d == "up")
    up_done = statuses[("up", "completed")]
    channel = systems.SLOT_CHANNEL
    return {
        "flows": [
            {"direction": d, "from": s, "to": t, "month": m, "count": n}
            for (d, s, t, m), n in sorted(flows.items())
        ],
        "by_status": [
            {"direction": d, "status": s, "count": n} for (d, s), n in sorted(statuses.items())
        ],
        "up_referrals": up_total,
        "down_referrals": sum(n for (d, _), n in statuses.items() if d == "down"),
        "up_completion_rate": round(up_done / up_total, 4) if up_total else None,
        "open_waiting_days_median": round(median(waiting), 2) if waiting else None,
        "reserved_slots": {
            "used": _count(
                svc, "Slot", [("_tag", f"{channel}|{COMMUNITY_REFERRAL}"), ("status", "busy")]
            ),
            "unused_reserved": _count(
                svc, "Slot", [("_tag", f"{channel}|{COMMUNITY_REFERRAL}"), ("status", "free")]
            ),
            "returned_to_public": _count(svc, "Slot", [("_tag", f"{channel}|{RELEASED}")]),
        },  # fmt: skip
        "recognition": {
            state: _count(
                svc, "ServiceRequest", [("_tag", f"{systems.RESULT_RECOGNITION}|{state}")]
            )
            for state in (OFFERED, RECOGNISED, DECLINED)
        },
    }
