"""Subdistricts, population split and stable places."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from yilian.synth.geography import (
    CENSUS_2020_POPULATION,
    SUBDISTRICTS,
    apportion,
    district_population,
    place_near,
)


def test_ten_units_with_the_census_codes() -> None:
    # china-rules.md §7: 9 街道 + 新泾镇, codes 310105001 ... 310105102
    codes = [s.code for s in SUBDISTRICTS]
    assert codes == [
        "310105001", "310105002", "310105004", "310105005", "310105006",
        "310105008", "310105009", "310105010", "310105011", "310105102",
    ]  # fmt: skip


def test_scale_one_sums_exactly_to_the_2020_census() -> None:
    populations = district_population(1.0)
    assert sum(populations.values()) == CENSUS_2020_POPULATION == 693_051
    assert min(populations.values()) > 30_000  # every unit is a real catchment


def test_small_scale_keeps_the_proportions() -> None:
    full, small = district_population(1.0), district_population(0.01)
    assert sum(small.values()) == 6931
    for code in full:
        assert abs(small[code] / 6931 - full[code] / 693_051) < 0.001


@given(st.integers(0, 10**7), st.lists(st.integers(1, 500), min_size=1, max_size=12))
def test_apportion_sums_exactly_and_stays_within_one_of_the_quota(
    total: int, weights: list[int]
) -> None:
    parts = apportion(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - total * weight / sum(weights)) < 1


def test_places_are_stable_and_near_the_centroid() -> None:
    sub = SUBDISTRICTS[0]
    assert place_near(sub, "x", 1) == place_near(sub, "x", 1)
    assert place_near(sub, "x", 1) != place_near(sub, "x", 2)
    lat, lon = place_near(sub, "x", 1)
    assert abs(lat - sub.latitude) <= 0.008 and abs(lon - sub.longitude) <= 0.009
