"""The hashed bytes are pinned down so that anyone can re-compute a hash from a dump."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yilian.audit.canonical import GENESIS_HASH, HASHED_FIELDS, canonical_bytes, entry_hash
from yilian.audit.codes import purposes_of_use

FIELDS: dict[str, Any] = {
    "seq": 1,
    "recorded": datetime(2025, 1, 2, 3, 4, 5, 6),
    "actor": "张医生",
    "actor_kind": "user",
    "actor_role": None,
    "action": "R",
    "event": "read",
    "resources": ["Patient/p1"],
    "patients": ["Patient/p1"],
    "purpose": "TREAT",
    "outcome": 0,
    "outcome_desc": None,
    "source_address": None,
    "request_id": None,
    "query": None,
    "prev_hash": GENESIS_HASH,
}


def test_serialisation_is_sorted_compact_utf8_with_fixed_timestamps() -> None:
    expected = (
        '{"action":"R","actor":"张医生","actor_kind":"user","actor_role":null,"event":"read",'
        '"outcome":0,"outcome_desc":null,"patients":["Patient/p1"],"prev_hash":"' + "0" * 64 + '",'
        '"purpose":"TREAT","query":null,"recorded":"2025-01-02T03:04:05.000006Z",'
        '"request_id":null,"resources":["Patient/p1"],"seq":1,"source_address":null}'
    ).encode()
    assert canonical_bytes(FIELDS) == expected
    assert entry_hash(FIELDS) == hashlib.sha256(expected).hexdigest()


def test_hash_ignores_the_stored_hash_but_covers_every_other_field() -> None:
    assert entry_hash({**FIELDS, "hash": "x"}) == entry_hash(FIELDS)
    for name in HASHED_FIELDS:
        changed = dict(FIELDS)
        changed[name] = (
            datetime(2025, 1, 2, 3, 4, 5, 7)
            if name == "recorded"
            else ["Patient/p2"]
            if isinstance(FIELDS[name], list)
            else 2
            if isinstance(FIELDS[name], int)
            else "other"
        )
        assert entry_hash(changed) != entry_hash(FIELDS), name


@given(
    text=st.text(),
    items=st.lists(st.text(), max_size=4),
    number=st.integers(min_value=0, max_value=2**62),
)
def test_any_json_library_reproduces_the_bytes(text: str, items: list[str], number: int) -> None:
    fields = {**FIELDS, "actor": text, "query": text, "resources": items, "seq": number}
    document = {name: fields[name] for name in HASHED_FIELDS}
    document["recorded"] = "2025-01-02T03:04:05.000006Z"
    ours = canonical_bytes(fields)
    theirs = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert ours == theirs.encode("utf-8")


ACT_REASON = (
    Path(__file__).parents[2] / ".cache/hl7-r4-examples/package/CodeSystem-v3-ActReason.json"
)


def _descendants(concept: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for child in concept.get("concept", []):
        found[child["code"]] = child["display"]
        found.update(_descendants(child))
    return found


@pytest.mark.skipif(not ACT_REASON.exists(), reason="HL7 R4 examples package not unpacked")
def test_purpose_codes_are_the_purpose_of_use_branch_of_act_reason() -> None:
    system = json.loads(ACT_REASON.read_text("utf-8"))
    stack = list(system["concept"])
    while stack:
        concept = stack.pop()
        if concept["code"] == "PurposeOfUse":
            break
        stack.extend(concept.get("concept", []))
    assert purposes_of_use() == _descendants(concept)
