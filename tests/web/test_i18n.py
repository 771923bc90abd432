"""The message catalogue: both languages hold the same keys, and every key the UI uses exists."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from yilian.web import i18n

WEB = Path(i18n.__file__).parent
KEY_IN_TEMPLATE = re.compile(r"""\bt\(\s*"([A-Za-z0-9_.\-]+)"\s*[,)]""")
PREFIX_IN_TEMPLATE = re.compile(r"""\bt\(\s*"([A-Za-z0-9_\-]+\.)"\s*~""")


def test_both_catalogues_have_the_same_keys() -> None:
    zh, en = i18n.catalogue("zh-CN"), i18n.catalogue("en")
    assert set(zh) - set(en) == set(), "keys missing in en"
    assert set(en) - set(zh) == set(), "keys missing in zh-CN"


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_catalogues_use_the_same_placeholders_and_no_empty_text() -> None:
    zh, en = i18n.catalogue("zh-CN"), i18n.catalogue("en")
    for key in zh:
        assert zh[key].strip() and en[key].strip(), key
        assert _placeholders(zh[key]) == _placeholders(en[key]), key


def test_every_key_the_templates_and_routes_use_exists() -> None:
    zh = i18n.catalogue("zh-CN")
    # i18n.py itself only shows the call form in its docstring
    sources = [*WEB.glob("templates/*.html"), *(p for p in WEB.glob("*.py") if p.name != "i18n.py")]
    used = {key for path in sources for key in KEY_IN_TEMPLATE.findall(path.read_text("utf-8"))}
    assert used, "the scan found no keys"
    assert sorted(used - set(zh)) == []
    prefixes = {p for path in sources for p in PREFIX_IN_TEMPLATE.findall(path.read_text("utf-8"))}
    for prefix in prefixes:
        assert any(key.startswith(prefix) for key in zh), prefix


def test_language_choice_and_code_fallback() -> None:
    assert i18n.choose_language(None) == "zh-CN"
    assert i18n.choose_language("en") == "en"
    assert i18n.choose_language("fr") == "zh-CN"
    t = i18n.translator("en")
    assert t("pager.position", page=2, pages=5) == "Page 2 of 5"
    assert t.code("department.", "cardiology") == "Cardiology"
    assert t.code("department.", "not-a-department") == "not-a-department"
    assert t.code("department.", None) == "—"
    with pytest.raises(KeyError):
        t("no.such.key")
    with pytest.raises(ValueError, match="language"):
        i18n.catalogue("fr")
