"""Canonical serialisation and hash of an audit entry.

The hash must be reproducible by anyone holding a database dump, with any JSON library, so the
serialisation is pinned down exactly (docs/audit.md "Hash"):

- a JSON object of every field of the entry except ``hash`` (``seq`` and ``prev_hash`` included),
- keys sorted, no insignificant whitespace, UTF-8, non-ASCII characters not escaped,
- ``recorded`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, always six fractional digits),
- values are only strings, integers, null and arrays of strings; for these types the output is
  identical to RFC 8785 (JSON Canonicalization Scheme), https://www.rfc-editor.org/rfc/rfc8785.

``hash = lowercase hex SHA-256(serialisation)``; the first entry's ``prev_hash`` is 64 zeros.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS_HASH = "0" * 64
INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# The fields the hash covers, in the order of the table (the serialisation sorts them anyway).
HASHED_FIELDS: tuple[str, ...] = (
    "seq",
    "recorded",
    "actor",
    "actor_kind",
    "actor_role",
    "action",
    "event",
    "resources",
    "patients",
    "purpose",
    "outcome",
    "outcome_desc",
    "source_address",
    "request_id",
    "query",
    "prev_hash",
)


def to_naive_utc(moment: datetime) -> datetime:
    """The stored form of a time: naive UTC (both databases keep microseconds)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def format_instant(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (isoformat is the fast path to INSTANT_FORMAT)."""
    return to_naive_utc(moment).isoformat(timespec="microseconds") + "Z"


def canonical_bytes(fields: Mapping[str, Any]) -> bytes:
    """The exact bytes that are hashed; ``fields`` must hold every name in HASHED_FIELDS."""
    document = {name: fields[name] for name in HASHED_FIELDS}
    document["recorded"] = format_instant(document["recorded"])
    document["resources"] = list(document["resources"])
    document["patients"] = list(document["patients"])
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def entry_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(fields)).hexdigest()
