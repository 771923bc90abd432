"""The home pages' counts on the hand-made district (tests/web/district.py), both databases."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from tests.web.district import MiniDistrict
from yilian.db import session_factory
from yilian.web import figures


def test_district_figures_count_what_the_record_says(
    web_engine: Engine, district: MiniDistrict
) -> None:
    with session_factory(web_engine)() as session:
        found = figures.district_figures(session, district.today)
    assert found.residents == 5
    assert found.active_contracts == 3  # the finished contract of pc is not counted
    assert (found.coverage.contracted, found.coverage.residents) == (3, 5)
    # 65+: pa (70), pb (65 today), pe (born 1950); pd turns 65 tomorrow
    assert (found.coverage_65.contracted, found.coverage_65.residents) == (3, 3)
    assert found.facilities_by_tier == {
        "municipal": 1,
        "district-regional": 1,
        "community": 1,
        "station": 1,
        "public-health": 0,
    }
    # 29 days ago is inside the 30-day window, 40 days ago is not; ext has no tier → other;
    # the 07:30 China-time visit today (UTC yesterday) counts for today.
    assert found.visits_by_tier == {
        "municipal": 1,
        "district-regional": 1,
        "community": 1,
        "station": 1,
        "public-health": 0,
        "other": 1,
    }


def _week_index(today: dt.date, day: dt.date, weeks: int) -> int:
    monday = today - dt.timedelta(days=today.weekday())
    day_monday = day - dt.timedelta(days=day.weekday())
    return weeks - 1 - (monday - day_monday).days // 7


def test_syndrome_weeks_by_icd10_block_and_fever_clinic(
    web_engine: Engine, district: MiniDistrict
) -> None:
    today, weeks = district.today, 10
    with session_factory(web_engine)() as session:
        found = figures.syndrome_weeks(session, today, weeks)
    assert found.weeks[-1] == today - dt.timedelta(days=today.weekday())
    assert len(found.weeks) == weeks

    def expected(days_ago: list[int]) -> list[int]:
        counts = [0] * weeks
        for n in days_ago:
            index = _week_index(today, today - dt.timedelta(days=n), weeks)
            if 0 <= index < weeks:
                counts[index] += 1
        return counts

    assert found.series["respiratory"] == expected([3, 10])  # J06.9, J11.1
    assert found.series["gastrointestinal"] == expected([40, 1])  # A09, K52.9
    assert found.series["fever-clinic"] == expected([10])


def test_panel_pages_and_last_visits(web_engine: Engine, district: MiniDistrict) -> None:
    with session_factory(web_engine)() as session:
        assert figures.panel_page(session, "gp", 0, 20) == (2, ["pa", "pb"])
        assert figures.panel_page(session, "gp", 1, 1) == (2, ["pb"])
        assert figures.panel_page(session, "gp2", 0, 20) == (1, ["pe"])
        assert figures.panel_page(session, "nobody", 0, 20) == (0, [])
        visits = figures.last_visits(session, ["pa", "pb", "pe"])
    assert figures.china_date(visits["pa"]) == (district.today - dt.timedelta(days=3)).isoformat()
    assert figures.china_date(visits["pb"]) == (district.today - dt.timedelta(days=10)).isoformat()
    assert "pe" not in visits


def test_organization_figures(web_engine: Engine, district: MiniDistrict) -> None:
    with session_factory(web_engine)() as session:
        hosp = figures.organization_figures(session, "hosp", district.today)
        chc = figures.organization_figures(session, "chc", district.today)
        staff = figures.practitioners_by_role(session, "chc")
    # the referral to the hospital's cardiology department counts for the hospital
    assert (hosp.referrals_total, hosp.referrals_open, hosp.visits_recent) == (1, 1, 1)
    assert hosp.contracts_managed == 0
    # the CHC's station is part of it: its fever-clinic visit counts too
    assert (chc.visits_recent, chc.contracts_managed, chc.referrals_total) == (2, 3, 0)
    assert staff == {"doctor": 2, "nurse": 1}


def test_calendar_helpers() -> None:
    assert figures.years_before(dt.date(2024, 2, 29), 65) == dt.date(1959, 2, 28)
    assert figures.china_date(dt.datetime(2026, 1, 1, 23, 30)) == "2026-01-02"
    start, end = figures.recent_window(dt.date(2026, 3, 31), 30)
    assert (start, end) == (dt.datetime(2026, 3, 1, 16), dt.datetime(2026, 3, 31, 16))
