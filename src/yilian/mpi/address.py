"""Normalised Shanghai addresses: district, subdistrict, road, lane (弄), number (号), room (室).

Neither cpca nor jionlp normalises below the subdistrict, and both leave abolished districts
unresolved (shared/domain/identity-and-analytics.md "Addresses"), so the matcher parses the parts
itself. Abolished districts are mapped to the district that absorbed them: 卢湾 -> 黄浦,
闸北 -> 静安, 南汇 -> 浦东新区 (same source; merger years unverified there, not needed here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Abolished district -> current district (identity-and-analytics.md, "Resident ID" and
# "Addresses").
ABOLISHED_DISTRICTS = {"卢湾区": "黄浦区", "闸北区": "静安区", "南汇区": "浦东新区"}

_FULLWIDTH = str.maketrans("０１２３４５６７８９－（）　", "0123456789-() ")
_CHINESE_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
# Shanghai's 16 districts and the three abolished ones, as people abbreviate them (上海徐汇, 长宁):
# identity-and-analytics.md notes cpca fails on such abbreviations, so they are expanded here.
# The district list is general knowledge [unverified in shared/domain]; 浦东 is 浦东新区.
_DISTRICT_NAMES = "黄浦 徐汇 长宁 静安 普陀 虹口 杨浦 闵行 宝山 嘉定 浦东 金山 松江 青浦 奉贤 崇明"
_ABOLISHED_NAMES = "卢湾 闸北 南汇"
_SHORT_DISTRICTS = {
    name: name + ("新区" if name == "浦东" else "区")
    for name in f"{_DISTRICT_NAMES} {_ABOLISHED_NAMES}".split()
}
_PROVINCE = re.compile(r"^(?:中国)?(?:上海市?|[\u4e00-\u9fff]{2,3}省)")
_CITY = re.compile(r"^[\u4e00-\u9fff]{2,4}市")
_DISTRICT = re.compile(r"^([\u4e00-\u9fff]{1,4}?(?:新区|区|县))")
_SUBDISTRICT = re.compile(r"^([\u4e00-\u9fff]{2,5}?(?:街道|镇|乡))")
_ROAD = re.compile(r"^([\u4e00-\u9fff0-9]{1,12}?(?:大道|公路|路|街|巷|道))")
_LANE = re.compile(r"^(\d+)弄")
_NUMBER = re.compile(r"^(\d+(?:-\d+)?)号")
_ROOM = re.compile(r"^(?:\d+(?:幢|栋|楼))?(\d+)室?")


@dataclass(frozen=True)
class Address:
    """The parts of an address; None where the text does not have that part."""

    district: str | None = None
    subdistrict: str | None = None
    road: str | None = None
    lane: str | None = None
    number: str | None = None
    room: str | None = None

    def key(self, *parts: str) -> str | None:
        """The named parts joined, or None if any is missing (a blocking/comparison key)."""
        values = [getattr(self, p) for p in parts]
        return "|".join(values) if all(values) else None


def _arabic(text: str) -> str:
    """Chinese numerals up to 9999 in lane/number positions -> Arabic (一百二十三弄 -> 123弄)."""

    def convert(match: re.Match[str]) -> str:
        value, current = 0, 0
        for ch in match.group(0):
            if ch in _CHINESE_DIGITS:
                current = _CHINESE_DIGITS[ch]
            else:
                unit = {"十": 10, "百": 100, "千": 1000}[ch]
                value += (current or 1) * unit
                current = 0
        return str(value + current)

    return re.sub(r"[零〇一二两三四五六七八九十百千]+(?=[弄号室])", convert, text)


def parse_address(text: str) -> Address:
    """Parse a Shanghai address; unknown leading or trailing text is ignored, never guessed."""
    rest = _arabic(text.translate(_FULLWIDTH).replace(" ", ""))
    rest = _PROVINCE.sub("", rest)
    rest = _CITY.sub("", rest)
    parts: dict[str, str | None] = {}
    short = rest[:2]
    # 长宁 alone is the district, but 长宁路 / 浦东大道 / 长宁区 are not the abbreviation.
    if short in _SHORT_DISTRICTS and rest[2:3] not in ("区", "新", "路", "街", "大", "公", "道"):
        parts["district"] = _SHORT_DISTRICTS[short]
        rest = rest[2:]
    for name, pattern in (
        ("district", _DISTRICT),
        ("subdistrict", _SUBDISTRICT),
        ("road", _ROAD),
        ("lane", _LANE),
        ("number", _NUMBER),
        ("room", _ROOM),
    ):
        if name in parts:
            continue
        match = pattern.match(rest)
        if match and match.group(1):
            parts[name] = match.group(1)
            rest = rest[match.end() :]
    district = parts.get("district")
    if district is not None:
        district = ABOLISHED_DISTRICTS.get(district, district)
        parts["district"] = district
    return Address(**parts)
