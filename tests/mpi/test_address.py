"""Shanghai address parser: examples, abolished districts, and a round-trip property."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from yilian.mpi.address import Address, parse_address


def test_full_address() -> None:
    assert parse_address("上海市长宁区华阳路街道长宁路1123弄45号302室") == Address(
        "长宁区", "华阳路街道", "长宁路", "1123", "45", "302"
    )


def test_abbreviations_fullwidth_and_chinese_numerals() -> None:
    assert parse_address("上海长宁区天山路三百弄12号") == Address(
        "长宁区", None, "天山路", "300", "12", None
    )
    assert parse_address("长宁区番禺路 ２２２ 号").number == "222"
    assert parse_address("长宁区定西路一千一百弄十五号").lane == "1100"
    assert parse_address("长宁区定西路一千一百弄十五号").number == "15"


def test_abolished_districts_map_to_the_current_one() -> None:
    assert parse_address("闸北区共和新路100号").district == "静安区"
    assert parse_address("卢湾区淮海中路1号").district == "黄浦区"
    assert parse_address("南汇区惠南镇城东路5号").district == "浦东新区"


def test_unparseable_text_gives_no_parts() -> None:
    assert parse_address("不详") == Address()
    assert parse_address("").key("road") is None


roads = st.sampled_from(
    ["长宁路", "愚园路", "天山路", "虹桥路", "中山西路", "延安西路", "古北大道"]
)
subdistricts = st.sampled_from(["华阳路街道", "江苏路街道", "新华路街道", "程家桥街道", "新泾镇"])
numbers = st.integers(1, 2999).map(str)


@given(
    st.booleans(),
    st.sampled_from(["长宁区", "徐汇区", "静安区"]),
    st.one_of(st.none(), subdistricts),
    roads,
    st.one_of(st.none(), numbers),
    numbers,
    st.one_of(st.none(), numbers),
)
def test_round_trip(
    city: bool,
    district: str,
    subdistrict: str | None,
    road: str,
    lane: str | None,
    number: str,
    room: str | None,
) -> None:
    text = (
        ("上海市" if city else "")
        + district
        + (subdistrict or "")
        + road
        + (f"{lane}弄" if lane else "")
        + f"{number}号"
        + (f"{room}室" if room else "")
    )
    assert parse_address(text) == Address(district, subdistrict, road, lane, number, room)
