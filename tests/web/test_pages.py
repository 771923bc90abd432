"""Every page through the HTTP interface, as each role, on both databases (no browser)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy import Engine, select

from tests.web.conftest import Browser, csrf_of
from tests.web.district import NAMES
from yilian.audit.models import AuditEntryRow
from yilian.db import session_factory


def figure(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert found, f"no #{element_id} on the page"
    return found.group(1).strip()


def chart_spec(page: str, chart_id: str) -> dict[str, object]:
    found = re.search(rf'id="chart-{chart_id}-data">(.*?)</script>', page, re.S)
    assert found, f"no data for chart {chart_id}"
    spec: dict[str, object] = json.loads(found.group(1))
    return spec


def test_pages_without_a_session_redirect_to_login(app: FastAPI) -> None:
    browser = Browser(app)
    for path in ("/", "/patients/pa", "/?page=2"):
        response = browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=%2F")
    login = browser.get("/login")
    assert login.status_code == 200 and 'name="password"' in login.text
    assert "samesite=strict" in login.headers["set-cookie"].lower()


def test_login_rejects_wrong_password_missing_fields_and_forged_forms(app: FastAPI) -> None:
    browser = Browser(app)
    assert browser.login("web-manager", "not-the-password").status_code == 401
    token = csrf_of(browser.get("/login"))
    empty = browser.http.post("/login", data={"username": "", "password": "", "csrf_token": token})
    assert empty.status_code == 400 and 'id="login-error"' in empty.text
    forged = browser.http.post(
        "/login", data={"username": "web-manager", "password": "x", "csrf_token": "forged-x" * 4}
    )
    assert forged.status_code == 403


def test_login_sets_a_strict_http_only_session_and_logout_ends_it(browser: Browser) -> None:
    response = browser.login("web-manager")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "yilian_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert browser.get("/").status_code == 200
    assert browser.post_form("/logout", {}).status_code == 303
    assert browser.get("/").status_code == 303


def test_manager_home_shows_the_district_counts(signed_in: Callable[[str], Browser]) -> None:
    browser = signed_in("web-manager")
    page = browser.get("/").text
    assert figure(page, "fig-residents") == "5"
    assert figure(page, "fig-contracts") == "3"
    assert figure(page, "fig-coverage") == "60.0%"
    assert figure(page, "fig-coverage-65") == "100.0%"
    spec = chart_spec(page, "visits-by-tier")
    assert spec["kind"] == "bar"
    assert spec["categories"][:2] == ["市级医院", "区域医疗中心/区级医院"]  # type: ignore[index]
    assert list(spec["series"].values()) == [[1, 1, 1, 1, 0, 1]]  # type: ignore[attr-defined]
    for name in NAMES.values():
        assert name not in page


def test_language_switch_is_kept_in_a_cookie(browser: Browser) -> None:
    browser.login("web-manager")
    assert "全区概况" in browser.get("/").text
    switched = browser.post_form("/language", {"lang": "en", "next": "/"})
    assert switched.status_code == 303
    page = browser.get("/").text
    assert "The district today" in page and '<html lang="en">' in page
    assert browser.post_form("/language", {"lang": "fr", "next": "/"}).status_code == 400
    browser.post_form("/language", {"lang": "zh-CN", "next": "https://evil.example/"})
    assert "全区概况" in browser.get("/").text


def test_family_doctor_sees_his_panel_and_its_records(
    signed_in: Callable[[str], Browser], web_engine: Engine
) -> None:
    browser = signed_in("web-doctor")
    page = browser.get("/").text
    assert figure(page, "fig-panel") == "2"
    assert re.findall(r'data-patient="([^"]+)"', page) == ["pa", "pb"]
    assert NAMES["pa"] in page and "I10" in page and "E11.9" in page
    record = browser.get("/patients/pa")
    assert record.status_code == 200
    assert NAMES["pa"] in record.text and "I10" in record.text
    trend = chart_spec(record.text, "trend-bp")
    assert trend["kind"] == "time"
    assert [p[1] for p in list(trend["series"].values())[0]] == [152, 138]  # type: ignore[attr-defined]
    with session_factory(web_engine)() as session:
        reads = session.execute(
            select(AuditEntryRow).where(AuditEntryRow.actor == "user/web-doctor")
        ).scalars()
        assert any("Patient/pa" in entry.patients for entry in reads)


def test_family_doctor_is_told_why_and_may_break_the_glass(
    signed_in: Callable[[str], Browser], web_engine: Engine
) -> None:
    browser = signed_in("web-doctor")
    denied = browser.get("/patients/pc")
    assert denied.status_code == 403
    assert 'id="break-glass-form"' in denied.text and NAMES["pc"] not in denied.text
    assert 'id="denied-reason"' in denied.text
    short = browser.post_form("/patients/pc/break-glass", {"reason": "short"}, page="/patients/pc")
    assert short.status_code == 403 and 'id="reason-error"' in short.text
    reason = "unconscious patient brought to the CHC, needs history"
    opened = browser.post_form("/patients/pc/break-glass", {"reason": reason}, "/patients/pc")
    assert opened.status_code == 200
    assert 'id="break-glass-banner"' in opened.text and NAMES["pc"] in opened.text
    with session_factory(web_engine)() as session:
        entries = session.execute(
            select(AuditEntryRow).where(AuditEntryRow.purpose == "BTG")
        ).scalars()
        assert any("Patient/pc" in e.patients for e in entries)
    assert browser.get("/patients/pc").status_code == 403  # break-glass was for one request
    assert browser.get("/patients/bad id!").status_code in (400, 404)


def test_specialist_sees_referrals_and_visits_at_his_hospital(
    signed_in: Callable[[str], Browser],
) -> None:
    browser = signed_in("web-specialist")
    page = browser.get("/").text
    assert figure(page, "fig-referrals-open") == "1"
    assert figure(page, "fig-visits-30") == "1"
    referrals = page.split('id="referrals"')[1].split("</table>")[0]
    assert NAMES["pc"] in referrals
    encounters = page.split('id="encounters"')[1].split("</table>")[0]
    assert NAMES["pd"] in encounters and NAMES["pa"] in encounters
    assert browser.get("/patients/pc").status_code == 200
    assert browser.get("/patients/pe").status_code == 403


def test_cdc_sees_weekly_aggregates_and_no_names(signed_in: Callable[[str], Browser]) -> None:
    browser = signed_in("web-cdc")
    page = browser.get("/").text
    assert figure(page, "fig-respiratory") == "2"
    assert figure(page, "fig-gastrointestinal") == "2"
    assert figure(page, "fig-fever-clinic") == "1"
    spec = chart_spec(page, "syndromes")
    assert len(spec["categories"]) == 26  # type: ignore[arg-type]
    for name in NAMES.values():
        assert name not in page
    denied = browser.get("/patients/pa")
    assert denied.status_code == 403 and "break-glass-form" not in denied.text


def test_facility_admin_sees_his_facility(signed_in: Callable[[str], Browser]) -> None:
    browser = signed_in("web-facility")
    page = browser.get("/").text
    assert figure(page, "facility-name") == "社区中心丙"
    assert figure(page, "fig-staff-doctor") == "2"
    assert figure(page, "fig-staff-nurse") == "1"
    assert figure(page, "fig-contracts") == "3"
    assert figure(page, "cap-beds") == "40"


def test_resident_sees_only_his_own_record(signed_in: Callable[[str], Browser]) -> None:
    browser = signed_in("web-resident")
    page = browser.get("/").text
    assert NAMES["pa"] in page and "I10" in page
    assert figure(page, "contract-doctor") == "张医生"
    assert browser.get("/patients/pa").status_code == 200
    other = browser.get("/patients/pb")
    assert other.status_code == 403 and "break-glass-form" not in other.text
    forbidden = browser.post_form("/patients/pb/break-glass", {"reason": "x" * 20})
    assert forbidden.status_code == 403 and NAMES["pb"] not in forbidden.text


def test_bad_page_numbers_are_named(signed_in: Callable[[str], Browser]) -> None:
    browser = signed_in("web-doctor")
    for value in ("0", "abc", "-1", "100001"):
        response = browser.get(f"/?page={value}")
        assert response.status_code == 400 and 'id="error-message"' in response.text
    assert browser.get("/?page=2").status_code == 200  # past the end: an empty page


def test_static_assets_are_served(browser: Browser) -> None:
    assert browser.get("/static/app.css").status_code == 200
    assert "data-chart" in browser.get("/static/charts.js").text


def test_each_role_is_shown_the_pages_it_may_use(signed_in: Callable[[str], Browser]) -> None:
    expected = {
        "web-doctor": ["/referral/new", "/referral/mine", "/referral/contract", "/referral/orders"],
        "web-specialist": ["/referral/queue", "/referral/down", "/referral/orders"],
        "web-resident": ["/referral/me"],
        "web-manager": ["/referral/stats"],
        "web-cdc": [],
        "web-facility": [],
    }
    for user, links in expected.items():
        browser = signed_in(user)
        page = browser.get("/").text
        nav = re.search(r'<nav class="roles" id="role-nav">(.*?)</nav>', page, re.S)
        assert nav, f"{user}: no role navigation"
        shown = re.findall(r'href="(/referral/[a-z]+)"', nav.group(1))
        assert shown == links, user
        for link in links:
            assert browser.get(link).status_code == 200, f"{user} {link}"
