"""JSON encoding for FHIR content: orjson's speed, with a fallback for what it refuses.

FHIR decimals and integers may exceed 64 bits (an official R4 example does); orjson raises on
those, so such documents are written by the standard library instead — same JSON, slower path.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(document: Any) -> bytes:
    try:
        return orjson.dumps(document)
    except TypeError:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _parse_int(text: str) -> int | float:
    # R4 has no integer wider than 32 bits (integer, positiveInt, unsignedInt), so a longer
    # integer literal is a decimal that PostgreSQL's JSONB wrote out in full (1E+245 becomes
    # "1000…0"); reading it as a float restores the value the client sent.
    return int(text) if len(text) <= 18 else float(text)


def dumps_text(document: Any) -> str:
    """``dumps`` as text: the database's JSON serializer (every stored resource, every audit
    entry: the standard library took ~2.6x as long on 518 stored resources)."""
    return dumps(document).decode("utf-8")


# A run of 19 digits may be an integer literal that ``_parse_int`` must see (or only a long digit
# string, which merely takes the slow path); everything else is read by orjson, about twice as
# fast: decoding ~580 documents was the largest cost of $everything (ADR 0011). The digits are
# mapped to "0" and the run found by a substring search — a regular expression took longer
# than orjson's whole parse.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def loads(text: str | bytes) -> Any:
    """Read stored FHIR JSON (the database's JSON deserializer)."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:  # what only the standard library reads (a lone surrogate)
            pass
    return json.loads(text, parse_int=_parse_int)
