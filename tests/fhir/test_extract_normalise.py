"""String folding and date ranges shared by the index and the search side."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from yilian.fhir.searchparams.normalise import OPEN_HIGH, OPEN_LOW, date_range, normalise_string


def test_strings_fold_case_accents_width_and_whitespace() -> None:
    assert normalise_string("  José\t ÁLVAREZ  ") == "jose alvarez"
    assert normalise_string("Straße") == "strasse"
    assert normalise_string("Ｗａｎｇ") == "wang"  # full-width Latin from a Chinese IME


def test_chinese_names_survive_for_prefix_and_contains() -> None:
    folded = normalise_string("王小明")
    assert folded == "王小明"
    assert folded.startswith(normalise_string("王"))
    assert normalise_string("小明") in folded


def test_partial_dates_cover_their_whole_period() -> None:
    assert date_range("2024") == (datetime(2024, 1, 1), datetime(2025, 1, 1))
    assert date_range("2024-02") == (datetime(2024, 2, 1), datetime(2024, 3, 1))
    assert date_range("2024-12") == (datetime(2024, 12, 1), datetime(2025, 1, 1))
    assert date_range("2024-02-29") == (datetime(2024, 2, 29), datetime(2024, 3, 1))


def test_times_convert_to_naive_utc_at_their_precision() -> None:
    assert date_range("2024-01-01T08:00:00+08:00") == (
        datetime(2024, 1, 1),
        datetime(2024, 1, 1, 0, 0, 1),
    )
    assert date_range("2024-01-01T10:00:00Z") == (
        datetime(2024, 1, 1, 10),
        datetime(2024, 1, 1, 10, 0, 1),
    )
    low, high = date_range("2024-06-30T20:00:00.25-05:00") or (None, None)
    assert low == datetime(2024, 7, 1, 1, 0, 0, 250000)
    assert high == datetime(2024, 7, 1, 1, 0, 0, 260000)


def test_a_time_without_offset_is_taken_as_utc() -> None:
    assert date_range("2024-01-01T10:00:00") == date_range("2024-01-01T10:00:00Z")


def test_not_a_date() -> None:
    for text in ("", "yesterday", "2024-13", "2024-02-30", "0000", "2024-1-1", "2024-01-01T25:00"):
        assert date_range(text) is None, text


def test_edges_of_the_calendar_clamp_to_the_open_bounds() -> None:
    assert date_range("9999") == (datetime(9999, 1, 1), OPEN_HIGH)
    assert date_range("9999-12-31") == (datetime(9999, 12, 31), OPEN_HIGH)
    low, high = date_range("0001-01-01T00:00:00+08:00") or (None, None)
    assert low == OPEN_LOW and high is not None and high > low


@st.composite
def fhir_datetimes(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    precision = draw(st.sampled_from(["year", "month", "day", "minute", "second", "fraction"]))
    text = {
        "year": f"{moment.year:04d}",
        "month": f"{moment.year:04d}-{moment.month:02d}",
        "day": f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}",
        "minute": moment.strftime("%Y-%m-%dT%H:%M").rjust(16, "0"),
        "second": moment.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0"),
        "fraction": moment.strftime("%Y-%m-%dT%H:%M:%S.%f").rjust(26, "0"),
    }[precision]
    if precision in ("minute", "second", "fraction"):
        text += draw(st.sampled_from(["", "Z", "+08:00", "-05:00", "+14:00", "-12:00"]))
    return text


@given(fhir_datetimes())
def test_every_range_is_non_empty(text: str) -> None:
    found = date_range(text)
    assert found is not None, text
    low, high = found
    assert low < high


@given(st.dates(min_value=datetime(1, 1, 1).date(), max_value=datetime(9999, 12, 31).date()))
def test_partial_dates_nest(day: object) -> None:
    text = str(day).rjust(10, "0")
    year, month, whole_day = date_range(text[:4]), date_range(text[:7]), date_range(text)
    assert year and month and whole_day
    assert year[0] <= month[0] <= whole_day[0] < whole_day[1] <= month[1] <= year[1]


@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    st.integers(min_value=-12, max_value=14),
)
def test_a_time_shifts_by_its_offset_and_lasts_its_precision(moment: datetime, hours: int) -> None:
    moment = moment.replace(microsecond=0)
    sign = "+" if hours >= 0 else "-"
    text = moment.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + f"{sign}{abs(hours):02d}:00"
    found = date_range(text)
    assert found is not None
    assert found[0] == moment - timedelta(hours=hours)
    assert found[1] - found[0] == timedelta(seconds=1)
