"""The web shell's message catalogue: Simplified Chinese by default, English on request.

Every string a page shows lives in ``messages/<lang>.json`` under a dotted key; templates call
``t("key", name=value)`` (``str.format`` placeholders). Both catalogues must hold the same keys
(tests/web/test_i18n.py). The choice is kept in the ``yilian_lang`` cookie.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

DEFAULT_LANGUAGE = "zh-CN"
LANGUAGES = ("zh-CN", "en")
LANGUAGE_COOKIE = "yilian_lang"


@cache
def catalogue(language: str) -> dict[str, str]:
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    text = resources.files("yilian.web").joinpath("messages", f"{language}.json").read_text("utf-8")
    messages: dict[str, str] = json.loads(text)
    return messages


def choose_language(cookie: str | None) -> str:
    """The cookie's language when it names one we have, else the default (Chinese)."""
    return cookie if cookie in LANGUAGES else DEFAULT_LANGUAGE


class Translator:
    """``t(key, **values)`` for the UI's own strings (an unknown key raises, so a missing string
    fails the page tests); ``t.code(prefix, code)`` for codes from the data, which fall back to
    the code itself when the catalogue has no name for it."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.messages = catalogue(language)

    def __call__(self, key: str, **values: Any) -> str:
        text = self.messages[key]
        return text.format(**values) if values else text

    def code(self, prefix: str, code: Any) -> str:
        text = str(code or "")
        return self.messages.get(prefix + text, text) if text else "—"


Translate = Translator


def translator(language: str) -> Translator:
    return Translator(language)
