"""The FHIR resource store: the only code that writes resource, history and index tables.

Every write validates the resource, bumps its version, appends the version to history, rewrites its
search-index rows and hands an audit record to the audit hook — all in the caller's transaction
(the store flushes, the request edge commits), so a failure leaves nothing half-written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yilian.fhir.bulk import copytext
from yilian.fhir.compartment import patients_of
from yilian.fhir.errors import (
    conflict,
    gone,
    invalid,
    not_found,
    precondition_failed,
)
from yilian.fhir.indexdiff import delete_index_rows, index_changes
from yilian.fhir.models import INDEX_TABLES, ResourceRow, ResourceVersionRow
from yilian.fhir.validation import validate_resource
from yilian.fhir.validation.identity import mark_unverified_resident_ids

ID_MAX_LENGTH = 64
# Types whose version rows may share the current row's content instead of holding a copy
# (``create(shared_content=True)``): the AuditEvents the audit chain projects into the store,
# ~170 KB for a ``$everything`` and never changed by yilian (ADR 0018). Their version rows are
# given a copy of the content before the resource changes (``_unshare``).
SHARED_CONTENT_TYPES = frozenset({"AuditEvent"})


@dataclass(frozen=True)
class Access:
    """One access to the store, as the audit chain records it."""

    event: str  # create | update | delete | read | vread | history | search | everything | …
    resources: tuple[str, ...]
    patients: tuple[str, ...] = ()
    outcome: int = 0
    query: str | None = None
    outcome_desc: str | None = None  # why it failed (a denial names its rule)


AuditHook = Callable[[Session, Access], None]


@dataclass(frozen=True)
class WriteEvent:
    """A create or update about to be written, as write hooks see it.

    Hooks run inside the store's write path (``create``/``update``), so the REST routes, Bundle
    transactions and batches and the domain services all pass through them; a hook raises a
    ``FhirError`` to refuse the write or writes related resources through ``store`` (same
    transaction). ``previous`` is the current content (None for a new resource). A delete is an
    event too (``deleted``; ``resource`` is then just its type and id), so a rule can undo what
    the resource held — a deleted Appointment frees its Slot.
    """

    store: ResourceStore
    res_type: str
    res_id: str | None
    resource: dict[str, Any]
    previous: dict[str, Any] | None
    deleted: bool = False


WriteHook = Callable[[WriteEvent], None]


@dataclass
class WriteResult:
    """The outcome of a write: the stored resource and whether it was newly created."""

    resource: dict[str, Any]
    created: bool
    version_id: int
    last_updated: datetime
    unchanged: bool = False  # conditional create that matched an existing resource

    @property
    def reference(self) -> str:
        return f"{self.resource['resourceType']}/{self.resource['id']}"


@dataclass
class HistoryEntry:
    res_type: str
    res_id: str
    version_id: int
    last_updated: datetime
    method: str
    content: dict[str, Any] | None


@dataclass
class StoreOptions:
    validate: bool = True
    audit: AuditHook | None = None
    write_hooks: tuple[WriteHook, ...] = ()  # e.g. slot booking (yilian.referral.booking)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC).replace(tzinfo=None))
    # A resident ID breaking GB 11643: "reject" (422) or "unverified" (kept, marked, never
    # matched on) — YILIAN_RESIDENT_IDS, docs/mpi.md "Bad input".
    resident_ids: str = "reject"


@dataclass
class WriteBuffer:
    """What a unit of work has still to write at ``flush``: version rows in one batch, and per
    resource (pk) the content its index rows in the database come from (``indexed``, None: no
    rows) and the content they must reflect now (``written``, None: deleted) — only the
    difference is written (``yilian.fhir.indexdiff``)."""

    versions: list[dict[str, Any]] = field(default_factory=list)
    indexed: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    written: dict[int, dict[str, Any] | None] = field(default_factory=dict)

    def reindex(self, pk: int, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        self.indexed.setdefault(pk, before)  # the first write of the unit knows the database's
        self.written[pk] = after


def format_instant(moment: datetime) -> str:
    """A FHIR instant in UTC with microseconds, so ``_lastUpdated`` orders writes faithfully."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def new_id() -> str:
    return str(uuid.uuid4())


class ResourceStore:
    """CRUD, versioning and history over one SQLAlchemy session (one unit of work)."""

    def __init__(
        self,
        session: Session,
        options: StoreOptions | None = None,
        buffer: WriteBuffer | None = None,
    ) -> None:
        self.session = session
        self.options = options or StoreOptions()
        # Version and index rows are written in batches by flush(): one multi-row INSERT per
        # table instead of one per resource (a 200-entry transaction Bundle would otherwise
        # cost ~2,000 statements). Resource rows themselves are written at once.
        self._buffer = buffer if buffer is not None else WriteBuffer()

    def unguarded(self) -> ResourceStore:
        """The same unit of work — session, options (audit, hooks) and write buffer — without a
        subclass's access guard: for a rule's own consequences (a booking marks its Slot busy).
        Its writes are flushed with this store's, in the same batches."""
        if type(self) is ResourceStore:
            return self
        return ResourceStore(self.session, self.options, self._buffer)

    def flush(self) -> None:
        """Write buffered history and index rows; call before reading them back."""
        buffer = self._buffer
        if buffer.versions:
            insert_rows(self.session, ResourceVersionRow.__table__, buffer.versions)
            buffer.versions.clear()
        if buffer.written:
            changes = index_changes(
                (pk, buffer.indexed.get(pk), after) for pk, after in buffer.written.items()
            )
            buffer.written.clear()
            buffer.indexed.clear()
            delete_index_rows(self.session, changes)
            for kind, rows in changes.add.items():
                insert_rows(self.session, INDEX_TABLES[kind].__table__, rows)

    # ----------------------------------------------------------------- reads

    def read(self, res_type: str, res_id: str, *, audit: bool = True) -> dict[str, Any]:
        row = self._current(res_type, res_id)
        if row is None:
            raise not_found(f"{res_type}/{res_id} is not known")
        if row.deleted:
            raise gone(f"{res_type}/{res_id} was deleted (version {row.version_id})")
        if audit:
            self.audit(Access("read", (f"{res_type}/{res_id}",), _patients(row.content)))
        return row.content

    def current_row(
        self, res_type: str, res_id: str, *, for_update: bool = False
    ) -> ResourceRow | None:
        """The current row; ``for_update`` locks it until the transaction ends (PostgreSQL)."""
        return self._current(res_type, res_id, for_update=for_update)

    def vread(self, res_type: str, res_id: str, version_id: int) -> dict[str, Any]:
        self.flush()
        row = self.session.execute(
            select(ResourceVersionRow).where(
                ResourceVersionRow.res_type == res_type,
                ResourceVersionRow.res_id == res_id,
                ResourceVersionRow.version_id == version_id,
            )
        ).scalar_one_or_none()
        if row is None:
            raise not_found(f"{res_type}/{res_id} has no version {version_id}")
        if row.deleted:
            raise gone(f"{res_type}/{res_id} version {version_id} is a deletion")
        content = row.content
        if content is None:  # a version that shares the current row's content
            content = self._shared_contents({row.resource_pk: version_id})[row.resource_pk]
        ref = f"{res_type}/{res_id}/_history/{version_id}"
        self.audit(Access("vread", (ref,), _patients(content)))
        return content

    def history(
        self,
        res_type: str | None = None,
        res_id: str | None = None,
        *,
        since: datetime | None = None,
        at: datetime | None = None,
        count: int = 100,
        offset: int = 0,
    ) -> tuple[list[HistoryEntry], int]:
        """Versions newest first, with the total number of versions that match."""
        self.flush()
        query = select(ResourceVersionRow)
        if res_type:
            query = query.where(ResourceVersionRow.res_type == res_type)
        if res_id:
            query = query.where(ResourceVersionRow.res_id == res_id)
        if since:
            query = query.where(ResourceVersionRow.last_updated >= since)
        if at:
            query = query.where(ResourceVersionRow.last_updated <= at)
        total = self.session.execute(
            select(func.count()).select_from(query.subquery())
        ).scalar_one()
        if res_type and res_id and total == 0:
            raise not_found(f"{res_type}/{res_id} is not known")
        rows = (
            self.session.execute(
                query.order_by(ResourceVersionRow.last_updated.desc(), ResourceVersionRow.pk.desc())
                .limit(count)
                .offset(offset)
            )
            .scalars()
            .all()
        )
        shared = self._shared_contents(
            {r.resource_pk: r.version_id for r in rows if r.content is None and not r.deleted}
        )
        entries = [
            HistoryEntry(
                r.res_type,
                r.res_id,
                r.version_id,
                r.last_updated,
                r.method,
                shared[r.resource_pk] if r.content is None and not r.deleted else r.content,
            )
            for r in rows
        ]
        scope = "/".join(p for p in (res_type, res_id) if p) or "system"
        touched = tuple(f"{e.res_type}/{e.res_id}/_history/{e.version_id}" for e in entries)
        patients = tuple(sorted({p for e in entries if e.content for p in patients_of(e.content)}))
        self.audit(Access("history", touched, patients, query=scope))
        return entries, total

    # ---------------------------------------------------------------- writes

    def create(
        self,
        resource: dict[str, Any],
        *,
        res_id: str | None = None,
        fresh_id: bool = False,
        shared_content: bool = False,
    ) -> WriteResult:
        """Create with a server-assigned id, or ``res_id`` (``fresh_id``: one from ``new_id``).

        ``shared_content`` (types of ``SHARED_CONTENT_TYPES``): the version row holds no copy of
        the content; vread and history read the current row's until the resource changes.
        """
        self._check(resource, None)
        res_type = resource["resourceType"]
        if shared_content and res_type not in SHARED_CONTENT_TYPES:
            raise ValueError(f"{res_type} versions cannot share content ({SHARED_CONTENT_TYPES})")
        if res_id is None:  # assigned before the hooks run, so they know what is being written
            res_id, fresh_id = new_id(), True
        self._run_hooks(res_type, res_id, resource, None)
        if fresh_id:  # a fresh UUID cannot collide: no lookup, no savepoint
            return self._write_new(
                resource, res_type, res_id, method="POST", fresh=True, shared=shared_content
            )
        if self._current(res_type, res_id) is not None:
            raise conflict(f"{res_type}/{res_id} already exists", rule="unique-id")
        return self._write_new(resource, res_type, res_id, method="POST", shared=shared_content)

    def update(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
    ) -> WriteResult:
        """Update, or create with the client's id when the resource does not exist yet."""
        self._check(resource, res_type)
        if resource.get("id") != res_id:
            raise invalid(
                f"resource id {resource.get('id')!r} does not match the URL id {res_id!r}",
                expression=f"{res_type}.id",
                rule="update-id-matches-url",
            )
        row = self._current(res_type, res_id, for_update=True)
        previous = row.content if row is not None and not row.deleted else None
        self._run_hooks(res_type, res_id, resource, previous)
        if row is None:
            if if_match is not None:
                raise precondition_failed(
                    f"{res_type}/{res_id} does not exist, so If-Match {if_match} cannot match",
                    rule="if-match-version",
                )
            return self._write_new(resource, res_type, res_id, method="PUT")
        if if_match is not None and if_match != row.version_id:
            raise precondition_failed(
                f"{res_type}/{res_id} is at version {row.version_id}, not {if_match}",
                rule="if-match-version",
            )
        return self._write_version(row, resource, method="PUT")

    def delete(self, res_type: str, res_id: str, *, if_match: int | None = None) -> int | None:
        """Soft delete: a new, empty version in history. Returns the deletion's version id."""
        row = self._current(res_type, res_id, for_update=True)
        if row is None or row.deleted:
            self.audit(Access("delete", (f"{res_type}/{res_id}",)))
            return None
        if if_match is not None and if_match != row.version_id:
            raise precondition_failed(
                f"{res_type}/{res_id} is at version {row.version_id}, not {if_match}",
                rule="if-match-version",
            )
        self._run_hooks(res_type, res_id, {"resourceType": res_type, "id": res_id}, row.content,
                        deleted=True)  # fmt: skip
        self._unshare(row)
        now = self.options.clock()
        version = row.version_id + 1
        self._buffer.reindex(row.pk, row.content, None)
        self.session.execute(
            update(ResourceRow)
            .where(ResourceRow.pk == row.pk)
            .values(version_id=version, last_updated=now, deleted=True)
        )
        self._append_version(row.pk, res_type, res_id, version, now, "DELETE", None)
        patients = _patients(row.content)
        self.session.expire(row)
        self.audit(Access("delete", (f"{res_type}/{res_id}/_history/{version}",), patients))
        return version

    # -------------------------------------------------------------- internals

    def audit(self, access: Access) -> None:
        if self.options.audit is not None:
            self.options.audit(self.session, access)

    def _run_hooks(
        self,
        res_type: str,
        res_id: str | None,
        resource: dict[str, Any],
        previous: dict[str, Any] | None,
        *,
        deleted: bool = False,
    ) -> None:
        for hook in self.options.write_hooks:
            hook(WriteEvent(self, res_type, res_id, resource, previous, deleted))

    def _check(self, resource: Any, url_type: str | None) -> None:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise invalid(
                "the body must be a FHIR resource: a JSON object with a resourceType",
                expression="resourceType",
                rule="resource-json",
            )
        if url_type is not None and resource["resourceType"] != url_type:
            raise invalid(
                f"resourceType {resource['resourceType']!r} does not match the URL type "
                f"{url_type!r}",
                expression="resourceType",
                rule="resource-type-mismatch",
            )
        if self.options.resident_ids == "unverified":
            mark_unverified_resident_ids(resource)
        if self.options.validate:
            validate_resource(resource, expected_type=url_type)

    def _current(
        self, res_type: str, res_id: str, *, for_update: bool = False
    ) -> ResourceRow | None:
        query = select(ResourceRow).where(
            ResourceRow.res_type == res_type, ResourceRow.res_id == res_id
        )
        if for_update:
            # populate_existing: a row already in the identity map must be re-read once the
            # lock is held, or a concurrent writer's committed version would go unseen.
            query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.execute(query).scalar_one_or_none()

    def _stamp(
        self, resource: dict[str, Any], res_id: str, version: int, now: datetime
    ) -> dict[str, Any]:
        stored = dict(resource)
        stored["id"] = res_id
        meta = dict(stored.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = format_instant(now)
        stored["meta"] = meta
        return stored

    def _write_new(
        self,
        resource: dict[str, Any],
        res_type: str,
        res_id: str,
        *,
        method: str,
        fresh: bool = False,
        shared: bool = False,
    ) -> WriteResult:
        if len(res_id) > ID_MAX_LENGTH:
            raise invalid(
                "id is longer than 64 characters", expression=f"{res_type}.id", rule="id-format"
            )
        now = self.options.clock()
        stored = self._stamp(resource, res_id, 1, now)
        statement = (
            insert(ResourceRow)
            .values(
                res_type=res_type,
                res_id=res_id,
                version_id=1,
                last_updated=now,
                deleted=False,
                content=stored,
            )
            .returning(ResourceRow.pk)
        )
        if fresh:
            pk = self.session.execute(statement).scalar_one()
        else:
            try:  # a client-chosen id may be taken by a concurrent request: 409, not 500
                with self.session.begin_nested():
                    pk = self.session.execute(statement).scalar_one()
            except IntegrityError as exc:
                raise conflict(
                    f"{res_type}/{res_id} was created concurrently by another request",
                    rule="unique-id",
                ) from exc
        self._append_version(pk, res_type, res_id, 1, now, method, stored, shared=shared)
        self._buffer.reindex(pk, None, stored)
        self.audit(Access("create", (f"{res_type}/{res_id}/_history/1",), _patients(stored)))
        return WriteResult(stored, created=True, version_id=1, last_updated=now)

    def _write_version(
        self, row: ResourceRow, resource: dict[str, Any], *, method: str
    ) -> WriteResult:
        now = self.options.clock()
        version = row.version_id + 1
        stored = self._stamp(resource, row.res_id, version, now)
        # Before the UPDATE: it synchronises the session's copy of the row to the new content.
        self._buffer.reindex(row.pk, None if row.deleted else row.content, stored)
        self._unshare(row)
        self.session.execute(
            update(ResourceRow)
            .where(ResourceRow.pk == row.pk)
            .values(version_id=version, last_updated=now, deleted=False, content=stored)
        )
        self._append_version(row.pk, row.res_type, row.res_id, version, now, method, stored)
        ref = f"{row.res_type}/{row.res_id}/_history/{version}"
        self.session.expire(row)  # after its last use: reading it again would cost a SELECT
        self.audit(Access("update", (ref,), _patients(stored)))
        return WriteResult(stored, created=False, version_id=version, last_updated=now)

    def _append_version(
        self,
        pk: int,
        res_type: str,
        res_id: str,
        version: int,
        now: datetime,
        method: str,
        stored: dict[str, Any] | None,
        *,
        shared: bool = False,
    ) -> None:
        self._buffer.versions.append(
            {
                "resource_pk": pk,
                "res_type": res_type,
                "res_id": res_id,
                "version_id": version,
                "last_updated": now,
                "method": method,
                "deleted": stored is None,
                "content": None if shared else stored,
            }
        )

    def _shared_contents(self, versions: dict[int, int]) -> dict[int, dict[str, Any]]:
        """The content of versions that share the current row's (resource pk -> version id).

        ``_unshare`` gives a version row its own copy before the resource changes, so the
        current row is at that version; anything else is a broken store, said as such.
        """
        if not versions:
            return {}
        rows = self.session.execute(
            select(ResourceRow.pk, ResourceRow.version_id, ResourceRow.content).where(
                ResourceRow.pk.in_(sorted(versions))
            )
        ).all()
        found = {pk: content for pk, version, content in rows if versions.get(pk) == version}
        missing = sorted(set(versions) - set(found))
        if missing:
            raise RuntimeError(
                f"version rows of resources {missing} share content the current rows no longer "
                "hold (fhir_resource_version.content is null for a live version)"
            )
        return found

    def _unshare(self, row: ResourceRow) -> None:
        """Before ``row`` changes: its current version's row gets its own copy of the content
        if it shares the current row's (``create(shared_content=True)``). Unconditionally for
        a stored row (a JSON column's null is not SQL NULL on either database, so the test is
        not worth a statement; the copy equals the content): rare, yilian never changes them."""
        if row.res_type not in SHARED_CONTENT_TYPES or row.deleted:
            return
        for pending in self._buffer.versions:  # written in this unit, not flushed yet
            if pending["resource_pk"] == row.pk and pending["version_id"] == row.version_id:
                if pending["content"] is None and not pending["deleted"]:
                    pending["content"] = row.content
                return
        self.session.execute(
            update(ResourceVersionRow)
            .where(
                ResourceVersionRow.resource_pk == row.pk,
                ResourceVersionRow.version_id == row.version_id,
                ResourceVersionRow.deleted.is_(False),
            )
            .values(content=row.content)
        )


# From this many rows on, PostgreSQL gets the rows by COPY instead of executemany: the AuditEvent
# of a 500-resource $everything names every resource, ~600 reference-index rows, and
# psycopg's pipelined executemany ran one INSERT per row (~55 ms of a ~150 ms request;
# bench/store_queries.py --profile). Small batches keep executemany (COPY's setup costs more).
COPY_MIN_ROWS = 64
# Search-index tables only: their columns are text, numbers and timestamps, which
# ``copytext.field`` writes as COPY text (no JSON documents, whose adaptation it does not do).
_COPY_TABLES = frozenset(table.__tablename__ for table in INDEX_TABLES.values())


def insert_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows of one table in the session's transaction (COPY for large PostgreSQL batches)."""
    if not rows:
        return
    connection = session.connection()
    columns = list(rows[0])
    if (
        len(rows) >= COPY_MIN_ROWS
        and connection.dialect.name == "postgresql"
        and table.name in _COPY_TABLES
        and all(len(row) == len(columns) and all(c in row for c in columns) for row in rows)
    ):
        names = ", ".join(f'"{name}"' for name in columns)
        block = "".join(copytext.line([row[c] for c in columns]) for row in rows)
        raw = connection.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
        ):
            copy.write(block.encode())
        return
    connection.execute(table.insert(), rows)


def _patients(content: dict[str, Any] | None) -> tuple[str, ...]:
    return tuple(patients_of(content)) if content else ()
