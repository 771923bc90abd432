"""Snapshot paging: links, later pages, expiry, and consistency under concurrent writes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine, func, select

from tests.fhir.search.conftest import BASE, Db, include_refs, match_ids
from yilian.db import session_factory, unit_of_work
from yilian.fhir.errors import FhirError
from yilian.fhir.search import cleanup_expired
from yilian.fhir.search.models import SearchResultRow, SearchRow
from yilian.fhir.search.paging import utc_now


def tagged(n: int, tag: str = "batch") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:batch", "value": tag}],
        "name": [{"family": f"P{n:03d}"}],
    }


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((x["url"] for x in bundle["link"] if x["relation"] == relation), None)


def follow(db: Db, url: str) -> dict[str, Any]:
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(BASE + "?")
    return db.page(query["_getpages"][0], int(query["_getpagesoffset"][0]), int(query["_count"][0]))


def test_pages_links_and_totals(db: Db) -> None:
    ids = [db.create(tagged(n)) for n in range(7)]
    first = db.search("Patient", "identifier=urn:batch|batch&_count=3&_sort=family")
    assert first["total"] == 7
    assert match_ids(first) == ids[:3]
    assert (
        link(first, "self")
        == f"{BASE}/Patient?identifier=urn%3Abatch%7Cbatch&_count=3&_sort=family"
    )
    assert link(first, "previous") is None
    second = follow(db, str(link(first, "next")))
    assert match_ids(second) == ids[3:6]
    assert link(second, "previous") == link(first, "first")
    third = follow(db, str(link(second, "next")))
    assert match_ids(third) == ids[6:]
    assert link(third, "next") is None
    assert link(third, "self") == link(first, "last")


def test_later_pages_keep_includes_and_summary(db: Db) -> None:
    for n in range(3):
        pid = db.create(tagged(n))
        db.create(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": f"Patient/{pid}"},
            }
        )
    first = db.search("Observation", "_count=2&_include=Observation:subject&_summary=data")
    second = follow(db, str(link(first, "next")))
    assert len(match_ids(second)) == 1 and len(include_refs(second)) == 1
    assert second["entry"][0]["resource"]["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_expired_search_is_gone_and_cleaned(db: Db, engine: Engine) -> None:
    for n in range(3):
        db.create(tagged(n))
    first = db.search("Patient", "_count=2")
    search_id = parse_qs(urlsplit(str(link(first, "next"))).query)["_getpages"][0]
    with unit_of_work(session_factory(engine)) as session:
        session.get_one(SearchRow, search_id).expires = utc_now() - timedelta(seconds=1)
    with pytest.raises(FhirError) as caught:
        db.page(search_id, 2, 2)
    assert caught.value.status == 410
    assert "expired" in caught.value.outcome()["issue"][0]["diagnostics"]
    with unit_of_work(session_factory(engine)) as session:
        assert cleanup_expired(session) == 1
        remaining = session.execute(select(func.count()).select_from(SearchResultRow)).scalar()
        assert remaining == 0
    with pytest.raises(FhirError) as again:
        db.page(search_id, 2, 2)
    assert again.value.status == 410


def test_bad_paging_values(db: Db) -> None:
    with pytest.raises(FhirError) as caught:
        db.page("x", -1, 10)
    assert caught.value.status == 400


def test_paging_under_concurrent_writes(db: Db) -> None:
    """Another transaction inserts, updates and deletes matches between page reads: every
    original match is returned exactly once (current version), deleted ones are dropped."""
    ids = [db.create(tagged(n)) for n in range(25)]
    first = db.search("Patient", "identifier=urn:batch|batch&_count=10")
    seen = match_ids(first)
    # writes that would shift an OFFSET-based page: new matches sorting first, an update, a delete
    for n in range(5):
        db.create(tagged(100 + n))
    db.put({**tagged(999), "id": ids[12], "gender": "female"})
    db.delete("Patient", ids[20])
    second = follow(db, str(link(first, "next")))
    db.create(tagged(200))
    third = follow(db, str(link(second, "next")))
    seen += match_ids(second) + match_ids(third)
    expected = [i for i in ids if i != ids[20]]
    assert seen == expected
    assert len(seen) == len(set(seen))
    updated = next(e for e in second["entry"] if e["resource"]["id"] == ids[12])
    assert updated["resource"]["gender"] == "female"  # the current version is shown
    assert third["total"] == 25
    fresh = db.search("Patient", "identifier=urn:batch|batch&_count=10")
    assert fresh["total"] == 30
