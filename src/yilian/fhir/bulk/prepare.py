"""The CPU-heavy half of a bulk load, run in worker processes: parse, validate, stamp, index.

Everything here is a pure function of the input lines, so chunks can be prepared in any process
while the main process writes earlier chunks. Index rows come either as plain tuples in the column
order of their tables (``index_columns``; SQLite's ``executemany``) or, for PostgreSQL, already as
``COPY`` text (``copytext``), so the writer does almost no Python per row.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

import orjson

from yilian.fhir.appointments import held_slots
from yilian.fhir.bulk.copytext import marked_lines
from yilian.fhir.compartment import patients_of
from yilian.fhir.errors import FhirError
from yilian.fhir.models import INDEX_TABLES
from yilian.fhir.searchparams.extract import extract_index_tuples
from yilian.fhir.searchparams.values import COLUMNS
from yilian.fhir.store import format_instant
from yilian.fhir.validation import validate_resource
from yilian.jsonutil import dumps

# FHIR R4 id datatype: [A-Za-z0-9\-\.]{1,64} (http://hl7.org/fhir/R4/datatypes.html#id).
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(slots=True)
class Prepared:
    """One resource ready to write. ``content`` is its JSON with meta stamped as version 1.

    Index rows are in ``index`` (tuples) or, when prepared as COPY text, in ``copy_index``
    (index kind → lines starting with ``copytext.PK_MARK``); the other one is empty.
    """

    line: int
    res_type: str
    res_id: str
    client_id: bool  # the input carried the id (written like an update-as-create, PUT)
    last_updated: datetime
    content: str
    index: dict[str, list[tuple[Any, ...]]]
    patients: tuple[str, ...]
    copy_index: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Rejected:
    line: int
    message: str


@dataclass(slots=True)
class PreparedChunk:
    prepared: list[Prepared] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


@cache
def index_columns(kind: str) -> tuple[str, ...]:
    """Columns of an index table in the order of ``extract_index_tuples``' rows: the table's
    columns but ``pk`` and ``resource_pk`` — checked against the table, so a schema change that
    the extraction does not follow fails loudly instead of writing values into wrong columns."""
    columns = ("res_type", "param", *COLUMNS[kind])
    table = INDEX_TABLES[kind].__table__
    own = {c.name for c in table.columns if c.name not in ("pk", "resource_pk")}
    if set(columns) != own:
        raise RuntimeError(f"index table {kind}: columns {sorted(own)}, extraction {columns}")
    return columns


def describe(error: FhirError) -> str:
    """One line naming each issue's element path and rule, as an OperationOutcome would."""
    parts = []
    for issue in error.issues:
        where = f"{issue.expression}: " if issue.expression else ""
        rule = f" [rule: {issue.rule}]" if issue.rule else ""
        parts.append(f"{where}{issue.message}{rule}")
    return "; ".join(parts) or str(error)


def prepare_chunk(
    lines: list[tuple[int, bytes]],
    validate: bool,
    expected_type: str | None = None,
    copy_text: bool = False,
) -> PreparedChunk:
    """Prepare every line of a chunk; a bad line becomes a ``Rejected`` naming the problem.

    ``copy_text``: index rows as PostgreSQL COPY text (``Prepared.copy_index``) instead of tuples.
    """
    chunk = PreparedChunk()
    now = datetime.now(UTC).replace(tzinfo=None)
    for number, raw in lines:
        try:
            prepared = _prepare_line(number, raw, validate, expected_type, now, copy_text)
            chunk.prepared.append(prepared)
        except _Reject as exc:
            chunk.rejected.append(Rejected(number, str(exc)))
        except FhirError as exc:
            chunk.rejected.append(Rejected(number, describe(exc)))
    return chunk


class _Reject(Exception):
    pass


def _prepare_line(
    number: int,
    raw: bytes,
    validate: bool,
    expected_type: str | None,
    now: datetime,
    copy_text: bool,
) -> Prepared:
    try:
        resource = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _Reject(f"not valid JSON: {exc} [rule: json-syntax]") from exc
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise _Reject(
            "a line must be one FHIR resource: a JSON object with a resourceType "
            "[rule: resource-json]"
        )
    res_type = resource["resourceType"]
    if expected_type is not None and res_type != expected_type:
        raise _Reject(
            f"resourceType: the input declares type {expected_type} but the line is a "
            f"{res_type} [rule: import-input-type]"
        )
    if validate:
        validate_resource(resource)
    if res_type == "Appointment" and held_slots(resource):
        raise _Reject(
            "Appointment.slot: a bulk load writes rows without the booking rule (exactly-once, "
            "reserved channel, 1+1+1 contract), so it does not load an Appointment that holds a "
            "Slot; book it through POST /fhir/Appointment or a transaction Bundle, or load it "
            "without Appointment.slot (history) [rule: bulk-appointment-holds-slot]"
        )
    given = resource.get("id")
    if given is not None and not (isinstance(given, str) and ID_PATTERN.fullmatch(given)):
        raise _Reject(
            f"{res_type}.id: {given!r} is not a FHIR id ([A-Za-z0-9-.]{{1,64}}) [rule: id-format]"
        )
    res_id = given or str(uuid.uuid4())
    return prepare_stored(
        stamp(resource, res_id, 1, now), number, given is not None, now, copy_text
    )


def prepare_stored(
    stored: dict[str, Any], number: int, client_id: bool, now: datetime, copy_text: bool
) -> Prepared:
    """A stamped resource (``stamp``) with its index rows, ready for ``BatchWriter``."""
    res_type, res_id = stored["resourceType"], stored["id"]
    extracted = extract_index_tuples(stored)  # rows in index_columns(kind) order
    patients = tuple(patients_of(stored))
    content = dumps(stored).decode()
    if copy_text:
        copy_index = {kind: marked_lines(rows) for kind, rows in extracted.items()}
        return Prepared(number, res_type, res_id, client_id, now, content, {}, patients, copy_index)
    return Prepared(number, res_type, res_id, client_id, now, content, extracted, patients)


def stamp(resource: dict[str, Any], res_id: str, version: int, now: datetime) -> dict[str, Any]:
    """The stored form: id set, meta.versionId and meta.lastUpdated as the store writes them."""
    stored = dict(resource)
    stored["id"] = res_id
    meta = dict(stored.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = _instant(now)
    stored["meta"] = meta
    return stored


@lru_cache(maxsize=4)
def _instant(now: datetime) -> str:
    return format_instant(now)  # one ``now`` per chunk: formatted once, not per resource


def restamp(content: str, version: int) -> str:
    """The stored JSON with a later version number (the id already existed)."""
    stored = orjson.loads(content)
    stored["meta"]["versionId"] = str(version)
    return dumps(stored).decode()
