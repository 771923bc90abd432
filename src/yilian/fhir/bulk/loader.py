"""The fast half of a bulk load: write prepared resources in one batched transaction.

Same tables and semantics as ``yilian.fhir.store.ResourceStore`` (a known id becomes a new
version with history, index rows are rewritten, one audit entry records the batch), but rows go
in as multi-row writes: ``COPY`` on PostgreSQL (https://www.postgresql.org/docs/current/sql-copy.html,
through psycopg's ``cursor.copy``), ``executemany`` inside the transaction on SQLite. The caller
owns the transaction: nothing here commits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import Table, bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from yilian.fhir.auditing import AuditBuffer
from yilian.fhir.bulk import copytext
from yilian.fhir.bulk.copytext import PK_MARK
from yilian.fhir.bulk.prepare import (
    Prepared,
    index_columns,
    prepare_chunk,
    prepare_stored,
    restamp,
    stamp,
)
from yilian.fhir.errors import invalid
from yilian.fhir.models import INDEX_TABLES, ResourceRow
from yilian.fhir.runtime import RequestContext
from yilian.fhir.store import Access

RESOURCE_COLUMNS = ("pk", "res_type", "res_id", "version_id", "last_updated", "deleted", "content")
VERSION_COLUMNS = (
    "resource_pk",
    "res_type",
    "res_id",
    "version_id",
    "last_updated",
    "method",
    "deleted",
    "content",
)

Key = tuple[str, str]


@dataclass
class BatchResult:
    written: int = 0
    updated: int = 0  # of which an existing id got a new version
    by_type: Counter[str] = field(default_factory=Counter)
    refs: list[str] = field(default_factory=list)  # Type/id/_history/n of each written item


class Sink(Protocol):
    def allocate(self, count: int) -> list[int]: ...

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None: ...


class PostgresSink:
    """Rows go in through ``COPY … FROM STDIN`` on the session's own connection and transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.raw: Any = session.connection().connection.driver_connection
        # yilian.db plans every statement for its values (searches need it); the writer's few
        # statements per batch are plan-stable by construction (per-key probes), and planning
        # them afresh with 1,000-element arrays doubled the server's CPU of a bulk load.
        session.execute(text("SET LOCAL plan_cache_mode = auto"))

    def allocate(self, count: int) -> list[int]:
        query = text(
            "SELECT nextval(pg_get_serial_sequence('fhir_resource', 'pk')) "
            "FROM generate_series(1, :n)"
        )
        return [int(v) for v in self.session.execute(query, {"n": count}).scalars()]

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        self.copy_text(table, columns, "".join(copytext.line(row) for row in rows))

    def copy_text(self, table: str, columns: Sequence[str], block: str) -> None:
        """Rows already in COPY text form, sent as one block."""
        if not block:
            return
        names = ", ".join(f'"{c}"' for c in columns)
        with (
            self.raw.cursor() as cursor,
            cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy,
        ):
            copy.write(block.encode())

    def copy_versions(self, current: list[tuple[int, str]]) -> None:
        """History rows equal to the resources' current rows (pk, method), copied server-side.

        A per-key index lookup (``LATERAL … OFFSET 0`` keeps the planner from turning it into a
        hash join over the whole table, which it would do without fresh statistics).
        """
        if not current:
            return
        self.session.execute(
            text(
                "INSERT INTO fhir_resource_version (resource_pk, res_type, res_id, version_id, "
                "last_updated, method, deleted, content) "
                "SELECT r.pk, r.res_type, r.res_id, r.version_id, r.last_updated, m.method, "
                "false, r.content "
                "FROM unnest(CAST(:pks AS bigint[]), CAST(:methods AS text[])) "
                "WITH ORDINALITY AS m(pk, method, ord) "
                "CROSS JOIN LATERAL (SELECT * FROM fhir_resource WHERE pk = m.pk OFFSET 0) AS r "
                "ORDER BY m.ord"
            ),
            {"pks": [pk for pk, _m in current], "methods": [m for _pk, m in current]},
        )


class SqliteSink:
    """``executemany`` with values in SQLAlchemy's own SQLite storage formats."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def allocate(self, count: int) -> list[int]:
        # Safe without a sequence: yilian.db begins every SQLite transaction IMMEDIATE, so this
        # transaction holds the database write lock from the first statement to the commit.
        top = self.session.execute(text("SELECT coalesce(max(pk), 0) FROM fhir_resource"))
        start = int(top.scalar_one()) + 1
        return list(range(start, start + count))

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        sql = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'
        self.session.connection().exec_driver_sql(sql, [_sqlite_row(r) for r in rows])


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_sqlite_value(v) for v in row)


def _sqlite_value(value: Any) -> Any:
    # SQLAlchemy stores SQLite DATETIME as "YYYY-MM-DD HH:MM:SS.ffffff" and booleans as 0/1.
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def sink_for(session: Session) -> Sink:
    if session.get_bind().dialect.name == "postgresql":
        return PostgresSink(session)
    return SqliteSink(session)


class BatchWriter:
    """Writes batches of prepared resources into the caller's transaction.

    On PostgreSQL, with items prepared as COPY text (``prepare_chunk(copy_text=True)``), the
    writer's own work per resource is a few string operations: resource rows and index blocks
    go in by ``Copy.write`` of whole text blocks, and the history rows of the batch's final
    versions are copied server-side from ``fhir_resource`` (``INSERT … SELECT``), so PostgreSQL
    parses each document's JSONB once instead of twice.
    """

    def __init__(self, session: Session, ctx: RequestContext, *, source: str) -> None:
        self.session = session
        self.ctx = ctx
        self.source = source  # what the audit entry names as the query, e.g. the file
        self.sink = sink_for(session)

    def write(self, items: Sequence[Prepared]) -> BatchResult:
        result = self.write_rows(items)
        self.write_audit(result, items)
        return result

    def write_rows(self, items: Sequence[Prepared]) -> BatchResult:
        """Resource, history and index rows of the batch; no audit entry yet."""
        result = BatchResult()
        if not items:
            return result
        keys = list(dict.fromkeys((p.res_type, p.res_id) for p in items))
        existing = self._existing(keys)
        fresh = [k for k in keys if k not in existing]
        pks = dict(zip(fresh, self.sink.allocate(len(fresh)), strict=True))
        pks.update({k: pk for k, (pk, _v) in existing.items()})
        versions = {k: existing[k][1] if k in existing else 0 for k in keys}
        final: dict[Key, tuple[Prepared, int, str]] = {}
        earlier: list[tuple[Any, ...]] = []  # history rows of ids written twice in the batch
        refs = result.refs
        for item in items:
            key = (item.res_type, item.res_id)
            versions[key] += 1
            version = versions[key]
            if key in final:
                earlier.append(_version_row(pks[key], *final[key]))
            content = item.content if version == 1 else restamp(item.content, version)
            final[key] = (item, version, content)
            refs.append(f"{item.res_type}/{item.res_id}/_history/{version}")
            result.by_type[item.res_type] += 1
        self._write_rows(final, earlier, pks, existing)
        result.written = len(items)
        result.updated = sum(1 for p in items if (p.res_type, p.res_id) in existing)
        return result

    def _write_rows(
        self,
        final: dict[Key, tuple[Prepared, int, str]],
        earlier: list[tuple[Any, ...]],
        pks: dict[Key, int],
        existing: dict[Key, tuple[int, int]],
    ) -> None:
        fast = isinstance(self.sink, PostgresSink) and all(
            item.copy_index or not item.index for item, _v, _c in final.values()
        )
        self._write_current(final, pks, existing, fast=fast)
        if earlier:
            self.sink.insert("fhir_resource_version", VERSION_COLUMNS, earlier)
        if fast:
            assert isinstance(self.sink, PostgresSink)
            self.sink.copy_versions(
                [(pks[k], _method(item)) for k, (item, _v, _c) in final.items()]
            )
            self._copy_index(final, pks)
        else:
            rows = [_version_row(pks[k], *value) for k, value in final.items()]
            self.sink.insert("fhir_resource_version", VERSION_COLUMNS, rows)
            self._write_index(final, pks)

    def _existing(self, keys: Sequence[Key]) -> dict[Key, tuple[int, int]]:
        """(pk, version) of the ids that are already stored, locked against concurrent writers."""
        found: dict[Key, tuple[int, int]] = {}
        if isinstance(self.sink, PostgresSink):
            # One round trip for the whole batch, one unique-index probe per key (a plain join
            # may become a hash join over the whole table when statistics are stale).
            query = text(
                "SELECT r.pk, r.res_type, r.res_id, r.version_id "
                "FROM unnest(CAST(:types AS text[]), CAST(:ids AS text[])) AS k(t, i) "
                "CROSS JOIN LATERAL (SELECT pk, res_type, res_id, version_id FROM fhir_resource "
                "WHERE res_type = k.t AND res_id = k.i FOR UPDATE) AS r"
            )
            params = {"types": [k[0] for k in keys], "ids": [k[1] for k in keys]}
            for pk, res_type, res_id, version in self.session.execute(query, params):
                found[(res_type, res_id)] = (int(pk), int(version))
            return found
        by_type: dict[str, list[str]] = {}
        for res_type, res_id in keys:
            by_type.setdefault(res_type, []).append(res_id)
        for res_type, ids in by_type.items():
            select_ids = select(ResourceRow.pk, ResourceRow.res_id, ResourceRow.version_id).where(
                ResourceRow.res_type == res_type, ResourceRow.res_id.in_(ids)
            )
            for pk, res_id, version in self.session.execute(select_ids):
                found[(res_type, res_id)] = (int(pk), int(version))
        return found

    def _write_current(
        self,
        final: dict[Key, tuple[Prepared, int, str]],
        pks: dict[Key, int],
        existing: dict[Key, tuple[int, int]],
        *,
        fast: bool,
    ) -> None:
        if fast:
            assert isinstance(self.sink, PostgresSink)
            block = "".join(
                _resource_line(pks[k], item, version, content)
                for k, (item, version, content) in final.items()
                if k not in existing
            )
            self.sink.copy_text("fhir_resource", RESOURCE_COLUMNS, block)
        else:
            new_rows = [
                (pks[k], k[0], k[1], version, item.last_updated, False, content)
                for k, (item, version, content) in final.items()
                if k not in existing
            ]
            if new_rows:
                self.sink.insert("fhir_resource", RESOURCE_COLUMNS, new_rows)
        changed = [
            {
                "b_pk": pks[k],
                "b_version": version,
                "b_updated": item.last_updated,
                "b_content": orjson.loads(content),
            }
            for k, (item, version, content) in final.items()
            if k in existing
        ]
        if changed:
            table = ResourceRow.__table__
            assert isinstance(table, Table)
            statement = (
                update(table)
                .where(table.c.pk == bindparam("b_pk"))
                .values(
                    version_id=bindparam("b_version"),
                    last_updated=bindparam("b_updated"),
                    deleted=False,
                    content=bindparam("b_content"),
                )
            )
            self.session.execute(statement, changed)
            old = [row["b_pk"] for row in changed]
            for index_table in INDEX_TABLES.values():
                self.session.execute(delete(index_table).where(index_table.resource_pk.in_(old)))

    def _write_index(
        self, final: dict[Key, tuple[Prepared, int, str]], pks: dict[Key, int]
    ) -> None:
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for key, (item, _version, _content) in final.items():
            pk = pks[key]
            for kind, found in item.index.items():
                rows.setdefault(kind, []).extend((pk, *row) for row in found)
        for kind, found in rows.items():
            table = INDEX_TABLES[kind].__tablename__
            self.sink.insert(table, ("resource_pk", *index_columns(kind)), found)

    def _copy_index(self, final: dict[Key, tuple[Prepared, int, str]], pks: dict[Key, int]) -> None:
        assert isinstance(self.sink, PostgresSink)
        blocks: dict[str, list[str]] = {}
        for key, (item, _version, _content) in final.items():
            mark = str(pks[key])
            for kind, lines in item.copy_index.items():
                blocks.setdefault(kind, []).append(lines.replace(PK_MARK, mark))
        for kind, parts in blocks.items():
            table = INDEX_TABLES[kind].__tablename__
            self.sink.copy_text(table, ("resource_pk", *index_columns(kind)), "".join(parts))

    def write_audit(self, result: BatchResult, items: Sequence[Prepared]) -> None:
        """One entry for the whole batch, through the same buffer as every store write.

        Its AuditEvent projection (one ``entity`` per resource of the batch) is written by this
        writer too, so on PostgreSQL its index rows go in by COPY like the batch's own.
        """
        if not items:
            return
        patients = tuple(dict.fromkeys(p for item in items for p in item.patients))
        buffer = AuditBuffer(self.ctx.as_actor())
        access = Access("import", tuple(result.refs), patients, query=self.source)
        buffer.record(self.session, access)
        buffer.flush(self.session, project=self._project)

    def _project(self, events: list[dict[str, Any]]) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        fast = isinstance(self.sink, PostgresSink)
        stored = [stamp(event, str(event["id"]), 1, now) for event in events]
        prepared = [prepare_stored(doc, 0, False, now, copy_text=fast) for doc in stored]
        keys = [(p.res_type, p.res_id) for p in prepared]
        pks = dict(zip(keys, self.sink.allocate(len(keys)), strict=True))
        final = {(p.res_type, p.res_id): (p, 1, p.content) for p in prepared}
        self._write_rows(final, [], pks, {})


def write_resources(
    session: Session,
    ctx: RequestContext,
    resources: Sequence[dict[str, Any]],
    *,
    source: str,
    batch_size: int = 1000,
) -> BatchResult:
    """Resources a job made in memory, written as the loader writes a file's lines.

    Each is validated (R4 + yilian rules) and stamped; a known id becomes a new version; one
    audit entry of event ``import`` per batch names ``source``. Store write hooks do not run, as
    in any bulk load: for what a job generates (the demo's Slots, ``yilian.referral.demo``), not
    for requests. The first invalid resource raises a FhirError naming it; the caller's
    transaction then rolls back whatever earlier batches wrote. The caller flushes its store's
    buffered rows first and commits.
    """
    total = BatchResult()
    writer = BatchWriter(session, ctx, source=source)
    for start in range(0, len(resources), batch_size):
        batch = resources[start : start + batch_size]
        lines = [(start + n, orjson.dumps(r)) for n, r in enumerate(batch, 1)]
        chunk = prepare_chunk(lines, validate=True)
        if chunk.rejected:
            first = chunk.rejected[0]
            raise invalid(
                f"{source}: resource {first.line} of {len(resources)}: {first.message}",
                rule="bulk-write-resource",
                status=422,
            )
        result = writer.write(chunk.prepared)
        total.written += result.written
        total.updated += result.updated
        total.by_type.update(result.by_type)
        total.refs.extend(result.refs)
    return total


def _method(item: Prepared) -> str:
    return "PUT" if item.client_id else "POST"


def _version_row(pk: int, item: Prepared, version: int, content: str) -> tuple[Any, ...]:
    return (
        pk,
        item.res_type,
        item.res_id,
        version,
        item.last_updated,
        _method(item),
        False,
        content,
    )


def _resource_line(pk: int, item: Prepared, version: int, content: str) -> str:
    """A ``fhir_resource`` row (RESOURCE_COLUMNS) as one COPY text line."""
    res_type, res_id = copytext.escape(item.res_type), copytext.escape(item.res_id)
    updated = item.last_updated.isoformat(" ")
    return f"{pk}\t{res_type}\t{res_id}\t{version}\t{updated}\tf\t{copytext.escape_json(content)}\n"
