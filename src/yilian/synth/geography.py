"""Changning district (长宁区, 310105): its 9 subdistricts and Xinjing town, populations, places.

Codes and the 2020 census total: /work/shared/domain/china-rules.md §7. Per-subdistrict census
populations are **not published** (§7), so ``POPULATION_WEIGHT`` is an assumption (docs/synth.md
A1): thousands of residents per unit recalled from older district yearbooks, used only as
relative weights; the apportionment always sums to the census total. Centroids are approximate
(WGS84, read off a map to ~300 m; docs/synth.md A2). Road names are real roads of each unit.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

DISTRICT_CODE = "310105"  # GB/T 2260 code of 长宁区 (china-rules.md §7)
DISTRICT_NAME = "长宁区"
CITY_NAME = "上海市"
CENSUS_2020_POPULATION = 693_051  # 7th census, 2020-11-01 (china-rules.md §7)


@dataclass(frozen=True)
class Subdistrict:
    """One 街道 or 镇: a CHC catchment (one CHC per subdistrict, china-rules.md §7)."""

    code: str  # 9-digit township code (first 9 digits of the 12-digit statistical code)
    name: str  # Chinese name
    name_en: str
    short: str  # the short name the CHC carries ("新华社区卫生服务中心", china-rules.md §7)
    latitude: float
    longitude: float
    postal_code: str
    population_weight: int  # assumption A1: thousands of residents, relative weight only
    roads: tuple[str, ...]


SUBDISTRICTS: tuple[Subdistrict, ...] = (
    Subdistrict(
        "310105001",
        "华阳路街道",
        "Huayang Road",
        "华阳",
        31.2203,
        121.4262,
        "200042",
        69,
        ("愚园路", "长宁路", "华阳路", "安西路", "镇宁路", "武夷路"),
    ),
    Subdistrict(
        "310105002",
        "江苏路街道",
        "Jiangsu Road",
        "江苏",
        31.2222,
        121.4336,
        "200050",
        49,
        ("江苏路", "愚园路", "武夷路", "长宁路", "利西路", "东诸安浜路"),
    ),
    Subdistrict(
        "310105004",
        "新华路街道",
        "Xinhua Road",
        "新华",
        31.2067,
        121.4270,
        "200052",
        66,
        ("新华路", "番禺路", "法华镇路", "定西路", "延安西路", "安顺路"),
    ),
    Subdistrict(
        "310105005",
        "周家桥街道",
        "Zhoujiaqiao",
        "周桥",
        31.2232,
        121.4105,
        "200051",
        72,
        ("长宁路", "中山西路", "万航渡路", "长宁支路", "天山路", "芙蓉江路"),
    ),
    Subdistrict(
        "310105006",
        "天山路街道",
        "Tianshan Road",
        "天山",
        31.2134,
        121.4024,
        "200336",
        82,
        ("天山路", "娄山关路", "遵义路", "茅台路", "紫云路", "天山支路"),
    ),
    Subdistrict(
        "310105008",
        "仙霞新村街道",
        "Xianxia Xincun",
        "仙霞",
        31.2067,
        121.3915,
        "200336",
        83,
        ("仙霞路", "威宁路", "水城路", "茅台路", "虹古路", "古北路"),
    ),
    Subdistrict(
        "310105009",
        "虹桥街道",
        "Hongqiao",
        "虹桥",
        31.1995,
        121.4115,
        "200336",
        75,
        ("虹桥路", "延安西路", "古北路", "伊犁路", "红宝石路", "荣华东道"),
    ),
    Subdistrict(
        "310105010",
        "程家桥街道",
        "Chengjiaqiao",
        "程家桥",
        31.1955,
        121.3712,
        "200335",
        40,
        ("虹桥路", "哈密路", "程家桥路", "虹许路", "剑河路", "协和路"),
    ),
    Subdistrict(
        "310105011",
        "北新泾街道",
        "Beixinjing",
        "北新泾",
        31.2188,
        121.3860,
        "200335",
        57,
        ("天山西路", "北渔路", "新渔路", "哈密路", "北翟路", "平塘路"),
    ),
    Subdistrict(
        "310105102",
        "新泾镇",
        "Xinjing Town",
        "新泾镇",
        31.2140,
        121.3640,
        "200335",
        100,
        ("天山西路", "仙霞西路", "淞虹路", "福泉路", "绥宁路", "泉口路"),
    ),
)

BY_CODE = {s.code: s for s in SUBDISTRICTS}


def apportion(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` so the parts sum exactly (largest remainder).

    Ties in the remainders go to the earlier entry, so the split is deterministic.
    """
    weight_sum = sum(weights)
    quotas = [total * w / weight_sum for w in weights]
    parts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (parts[i] - quotas[i], i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def district_population(scale: float) -> dict[str, int]:
    """Residents per subdistrict code at ``scale``; 1.0 gives exactly the 2020 census total."""
    total = round(CENSUS_2020_POPULATION * scale)
    parts = apportion(total, [s.population_weight for s in SUBDISTRICTS])
    return {s.code: n for s, n in zip(SUBDISTRICTS, parts, strict=True)}


def stable_unit(*key: object) -> float:
    """A number in [0, 1) fixed by ``key`` alone (not by the seed): places do not move."""
    digest = hashlib.blake2b("/".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


# Subdistricts span roughly 1.5-3 km; ±0.008° latitude ≈ ±0.9 km, ±0.009° longitude ≈ ±0.85 km
# at 31°N (assumption A2: blocks fall within about a kilometre of the centroid).
JITTER_LATITUDE = 0.008
JITTER_LONGITUDE = 0.009


def place_near(subdistrict: Subdistrict, *key: object) -> tuple[float, float]:
    """A stable point (latitude, longitude) near the subdistrict centroid, fixed by ``key``."""
    dy = (stable_unit("lat", subdistrict.code, *key) * 2 - 1) * JITTER_LATITUDE
    dx = (stable_unit("lon", subdistrict.code, *key) * 2 - 1) * JITTER_LONGITUDE
    return round(subdistrict.latitude + dy, 6), round(subdistrict.longitude + dx, 6)
