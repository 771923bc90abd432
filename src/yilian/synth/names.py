"""Chinese names: surnames by frequency, given names by sex and birth cohort.

Surname weights: the national ranking's top 20 with their shares (per cent of the population,
Yuan Yida et al., Chinese Academy of Sciences surname survey, 2006 — docs/synth.md A7) with
Shanghai's common local surnames (沈, 陆, 顾, 钱, 金, 施, 蒋, 曹) added at assumed shares; the
remainder is spread over a tail of less common surnames. Given-name pools are assumptions (A7):
characters typical of each cohort (建国/秀英 for the 1940s-50s, 伟/静 for the 1970s-80s,
子涵/浩然 for the 2000s).
"""

from __future__ import annotations

import random
from itertools import accumulate

_SURNAMES: tuple[tuple[str, float], ...] = (
    ("李", 7.94), ("王", 7.41), ("张", 7.07), ("刘", 5.38), ("陈", 4.53), ("杨", 3.08),
    ("赵", 2.29), ("黄", 2.23), ("周", 2.12), ("吴", 2.05), ("徐", 1.67), ("孙", 1.54),
    ("胡", 1.31), ("朱", 1.26), ("高", 1.21), ("林", 1.18), ("何", 1.17), ("郭", 1.15),
    ("马", 1.05), ("罗", 0.86),
    # Shanghai local surnames (assumed shares, A7)
    ("沈", 1.2), ("陆", 1.1), ("顾", 1.0), ("钱", 0.6), ("金", 0.6), ("施", 0.5),
    ("蒋", 0.5), ("曹", 0.5),
    # tail
    ("梁", 0.4), ("宋", 0.4), ("郑", 0.4), ("谢", 0.4), ("韩", 0.4), ("唐", 0.4),
    ("冯", 0.4), ("于", 0.4), ("董", 0.4), ("萧", 0.3), ("程", 0.3), ("袁", 0.3),
    ("邓", 0.3), ("许", 0.3), ("傅", 0.3), ("曾", 0.3), ("彭", 0.3), ("潘", 0.3),
    ("叶", 0.3), ("姚", 0.3), ("汪", 0.3), ("范", 0.3), ("方", 0.3), ("杜", 0.3),
    ("戴", 0.3), ("夏", 0.3), ("丁", 0.3), ("严", 0.2), ("邵", 0.2), ("俞", 0.2),
    ("瞿", 0.1), ("毛", 0.2), ("任", 0.2), ("姜", 0.2), ("龚", 0.2), ("欧阳", 0.05),
)  # fmt: skip
SURNAMES = tuple(name for name, _ in _SURNAMES)
_SURNAME_CUM = tuple(accumulate(weight for _, weight in _SURNAMES))

# Given-name characters by cohort and sex (assumption A7).
_GIVEN: dict[tuple[str, str], tuple[str, ...]] = {
    ("old", "male"): tuple("建国华明德忠福国强荣根宝祥海伟生林兴发"),
    ("old", "female"): tuple("秀英兰珍芳凤琴美玉桂梅华娣妹萍爱月"),
    ("mid", "male"): tuple("伟强磊军勇杰涛斌超鹏浩峰俊辉刚明飞"),
    ("mid", "female"): tuple("丽敏静燕娟艳婷霞颖洁琳倩雯晶慧蕾"),
    ("young", "male"): tuple("浩然宇轩子睿博文泽辰一航俊熙翔铭"),
    ("young", "female"): tuple("子涵梓萱欣怡思彤雨诗可馨语嘉佳琪"),
}


def cohort(birth_year: int) -> str:
    if birth_year < 1965:
        return "old"
    return "mid" if birth_year < 1995 else "young"


def surname(rng: random.Random) -> str:
    return rng.choices(SURNAMES, cum_weights=_SURNAME_CUM)[0]


def given_name(rng: random.Random, sex: str, birth_year: int) -> str:
    """One or two characters (about 30 % single-character names, more in the middle cohort)."""
    pool = _GIVEN[(cohort(birth_year), sex)]
    single = 0.45 if cohort(birth_year) == "mid" else 0.2
    if rng.random() < single:
        return rng.choice(pool)
    return rng.choice(pool) + rng.choice(pool)


def human_name(family: str, given: str) -> dict[str, object]:
    """An official HumanName; Chinese order is family then given, with no space in ``text``."""
    return {"use": "official", "text": family + given, "family": family, "given": [given]}
