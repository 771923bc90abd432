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


def loads(text: str | bytes) -> Any:
    """Read stored FHIR JSON (the database's JSON deserializer)."""
    return json.loads(text, parse_int=_parse_int)
