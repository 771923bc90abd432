"""Chinese personal names for matching: pinyin keys, surname readings, variant characters.

A registration clerk who hears a name types a homophone (陈伟/陈玮, 王丽/王莉) or picks a
similar-looking or variant character; comparing pinyin and a variant-normalised form catches
both. Facts: shared/domain/identity-and-analytics.md "Names: pypinyin 0.55.0" (homophones map to
equal pinyin; the default reading is wrong for 12 of 16 common polyphonic surnames tested, so the
surname is read from ``SURNAME_READINGS``).
"""

from __future__ import annotations

from functools import lru_cache

from pypinyin import lazy_pinyin

# The surname reading of polyphonic characters whose default pypinyin reading is wrong
# (identity-and-analytics.md, measured with pypinyin 0.55.0).
SURNAME_READINGS = {
    "单": "shan",
    "曾": "zeng",
    "仇": "qiu",
    "解": "xie",
    "朴": "piao",
    "区": "ou",
    "查": "zha",
    "盖": "ge",
    "乐": "yue",
    "翟": "zhai",
    "缪": "miao",
    "覃": "qin",
}
# Two-character surnames that pypinyin's phrase dictionary reads correctly (same source); listed
# so the surname/given split of a full name takes both characters.
COMPOUND_SURNAMES = frozenset(
    {"欧阳", "司马", "上官", "诸葛", "尉迟", "长孙", "万俟", "东方", "夏侯"}
)

# Variant and traditional forms seen in names, mapped to the standard simplified form.
# Traditional -> simplified pairs are from the 《简化字总表》 (1986); the variant pairs (异体字)
# are among those the 《通用规范汉字表》 (2013) lists with their standard form. Similar-looking
# characters that clerks confuse (形近字) are a separate, small, assumption-level list below.
VARIANTS = {
    "華": "华",
    "張": "张",
    "陳": "陈",
    "劉": "刘",
    "趙": "赵",
    "黃": "黄",
    "楊": "杨",
    "吳": "吴",
    "孫": "孙",
    "馬": "马",
    "偉": "伟",
    "麗": "丽",
    "國": "国",
    "東": "东",
    "紅": "红",
    "軍": "军",
    "強": "强",
    "峯": "峰",
    "羣": "群",
    "衞": "卫",
    "菓": "果",
    "喆": "哲",
    "堃": "坤",
}
# Similar-looking characters confused in handwriting and OCR (assumption, docs/mpi.md): each pair
# maps to one representative so the comparison treats them as the same character.
SIMILAR_LOOKING = {
    "已": "己",
    "巳": "己",
    "末": "未",
    "戌": "戊",
    "戍": "戊",
    "汩": "汨",
    "瑩": "莹",
    "淩": "凌",
}


def normalise_characters(name: str) -> str:
    """Full-width spaces and dots removed; variant and similar-looking characters unified."""
    out = []
    for ch in name.strip():
        if ch in " \u3000·•.":
            continue
        ch = VARIANTS.get(ch, ch)
        out.append(SIMILAR_LOOKING.get(ch, ch))
    return "".join(out)


def split_name(name: str) -> tuple[str, str]:
    """Surname and given name of a Chinese full name (compound surnames take two characters)."""
    if name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    return name[:1], name[1:]


@lru_cache(maxsize=200_000)
def name_pinyin(name: str) -> str:
    """Toneless pinyin of a full name, surname read as a surname: 曾伟 -> "zeng wei"."""
    normalised = normalise_characters(name)
    if not normalised:
        return ""
    surname, given = split_name(normalised)
    reading = SURNAME_READINGS.get(surname)
    head = [reading] if reading else lazy_pinyin(surname)
    return " ".join([*head, *lazy_pinyin(given)]) if given else " ".join(head)
