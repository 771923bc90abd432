"""Blocking keys of single Patients, as stored in ``mpi_blocking_key``.

The real-time path finds candidates the way the batch job blocks: two records are compared when
they agree on all columns of one blocking rule of the model (``chinese_spec().blocking``). A
record's key for a rule is a 64-bit hash of the rule's position and its values, so one B-tree
index on ``(key, patient_id)`` answers every rule and the table stays narrow (8 bytes a key
instead of an address string). A hash collision only adds a candidate, which scoring rejects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from yilian.fhir.systems import RESIDENT_ID
from yilian.mpi.blocking import BlockingRule
from yilian.mpi.chinese import COLUMNS, chinese_spec
from yilian.mpi.district import patient_row
from yilian.mpi.models import BlockingKeyRow
from yilian.mpi.records import Records, object_array
from yilian.mpi.resident_id import is_unverified


def matcher_row(resource: dict[str, Any]) -> dict[str, str | None]:
    """The matcher's columns of a Patient; an unverified resident ID counts as none."""
    row = patient_row(resource)
    unverified = [
        i
        for i in resource.get("identifier", [])
        if isinstance(i, dict) and i.get("system") == RESIDENT_ID and is_unverified(i)
    ]
    if unverified and row["resident_id"] == unverified[0].get("value"):
        row["resident_id"] = None
    return row


def patient_records(resources: Sequence[dict[str, Any]]) -> Records:
    """Matcher records of Patients (ids = their ids), derived columns prepared."""
    records = Records.from_rows([matcher_row(r) for r in resources], COLUMNS)
    records.ids = object_array(str(r.get("id")) for r in resources)
    chinese_spec().prepare(records)
    return records


def key_hash(rule_index: int, values: Iterable[str]) -> int:
    digest = hashlib.blake2b(
        "\x1f".join((str(rule_index), *values)).encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)  # fits a signed BIGINT


def record_keys(records: Records, row: int, rules: Sequence[BlockingRule]) -> list[int]:
    """The keys of one prepared record: one per rule whose columns are all present."""
    keys = []
    for index, rule in enumerate(rules):
        values = [records.column(c)[row] for c in rule.columns]
        if all(v is not None for v in values):
            keys.append(key_hash(index, values))
    return sorted(set(keys))


def all_keys(records: Records) -> Iterator[tuple[int, str]]:
    """(key, patient id) of every record."""
    rules = chinese_spec().blocking
    for row in range(len(records)):
        pid = str(records.ids[row])
        for key in record_keys(records, row, rules):
            yield key, pid


def replace_keys(session: Session, patient_id: str, keys: Sequence[int]) -> None:
    """Rewrite one Patient's keys (on create, update and delete: keys empty)."""
    session.execute(delete(BlockingKeyRow).where(BlockingKeyRow.patient_id == patient_id))
    if keys:
        session.execute(
            insert(BlockingKeyRow), [{"key": k, "patient_id": patient_id} for k in keys]
        )
