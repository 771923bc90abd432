"""Chinese names: surname readings, homophones, variant characters."""

from __future__ import annotations

from yilian.mpi.chinese_names import name_pinyin, normalise_characters, split_name


def test_polyphonic_surnames_read_as_surnames() -> None:
    # identity-and-analytics.md: pypinyin's default reading is wrong for these surnames.
    assert name_pinyin("曾伟") == "zeng wei"
    assert name_pinyin("单田芳") == "shan tian fang"
    assert name_pinyin("解晓东") == "xie xiao dong"
    assert name_pinyin("欧阳娜娜") == "ou yang na na"


def test_homophones_share_pinyin() -> None:
    for a, b in (("陈伟", "陈玮"), ("张小明", "张晓明"), ("王丽", "王莉"), ("李娜", "李那")):
        assert name_pinyin(a) == name_pinyin(b)
    assert name_pinyin("王丽") != name_pinyin("王力宏")


def test_variants_and_similar_looking_characters() -> None:
    assert normalise_characters("張 華") == "张华"
    assert normalise_characters("李巳") == normalise_characters("李己")
    assert split_name("欧阳娜娜") == ("欧阳", "娜娜")
    assert split_name("王丽") == ("王", "丽")
