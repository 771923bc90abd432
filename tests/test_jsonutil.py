"""Stored JSON is read by orjson where it can be, with the standard library's meaning kept."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from yilian.jsonutil import _parse_int, dumps, dumps_text, loads

documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def reference(text: str) -> Any:
    """What the database's deserializer meant before orjson: the standard library's reading."""
    return json.loads(text, parse_int=_parse_int)


@given(documents)
def test_reads_what_the_standard_library_reads(document: Any) -> None:
    for text in (dumps_text(document), json.dumps(document), json.dumps(document, indent=1)):
        assert loads(text) == reference(text)
        assert loads(text.encode()) == reference(text)


def test_integers_beyond_18_digits_are_decimals() -> None:
    text = '{"valueDecimal": 1000000000000000000000, "n": 1000000000000000000}'
    assert loads(text) == {"valueDecimal": 1e21, "n": 1e18}
    assert isinstance(loads(text)["n"], float)
    assert loads(b'{"n": 999999999999999999}') == {"n": 999999999999999999}


def test_what_orjson_refuses_is_still_read() -> None:
    text = '{"text": "\\ud800 alone"}'  # a lone surrogate escape: valid JSON, refused by orjson
    assert loads(text) == json.loads(text)


def test_text_serializer_is_compact_utf8_and_falls_back_for_huge_integers() -> None:
    assert dumps_text({"name": "王小明", "n": [1, 2.5]}) == '{"name":"王小明","n":[1,2.5]}'
    assert dumps_text({"n": 10**30}) == '{"n":' + str(10**30) + "}"
    assert dumps({"a": 1}) == b'{"a":1}'
