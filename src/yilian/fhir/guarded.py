"""A ``ResourceStore`` that asks an ``AccessGuard`` before every read and write it performs.

Reads are checked before they are audited, so a refused read leaves no success entry (its denial
is recorded by the guard instead); writes are checked against both the new content and the
current one, so a resource cannot be moved into or out of what the principal may change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from yilian.fhir.access import AccessGuard
from yilian.fhir.compartment import patients_of
from yilian.fhir.store import Access, HistoryEntry, ResourceStore, StoreOptions, WriteResult


class GuardedStore(ResourceStore):
    def __init__(self, session: Session, options: StoreOptions, guard: AccessGuard) -> None:
        super().__init__(session, options)
        self.guard = guard

    @contextmanager
    def _unaudited(self) -> Iterator[None]:
        hook = self.options.audit
        self.options.audit = None
        try:
            yield
        finally:
            self.options.audit = hook

    def read(self, res_type: str, res_id: str, *, audit: bool = True) -> dict[str, Any]:
        content = super().read(res_type, res_id, audit=False)
        self.guard.check_read(self.session, content)
        if audit:
            self.audit(Access("read", (f"{res_type}/{res_id}",), tuple(patients_of(content))))
        return content

    def vread(self, res_type: str, res_id: str, version_id: int) -> dict[str, Any]:
        with self._unaudited():
            content = super().vread(res_type, res_id, version_id)
        self.guard.check_read(self.session, content)
        ref = f"{res_type}/{res_id}/_history/{version_id}"
        self.audit(Access("vread", (ref,), tuple(patients_of(content))))
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
        if res_id is None:
            self.guard.check_history_across(res_type)
        with self._unaudited():
            entries, total = super().history(
                res_type, res_id, since=since, at=at, count=count, offset=offset
            )
        if res_id is not None:
            for entry in entries:
                if entry.content is not None:
                    self.guard.check_read(self.session, entry.content)
        scope = "/".join(p for p in (res_type, res_id) if p) or "system"
        touched = tuple(f"{e.res_type}/{e.res_id}/_history/{e.version_id}" for e in entries)
        patients = tuple(sorted({p for e in entries if e.content for p in patients_of(e.content)}))
        self.audit(Access("history", touched, patients, query=scope))
        return entries, total

    def create(
        self,
        resource: dict[str, Any],
        *,
        res_id: str | None = None,
        fresh_id: bool = False,
        shared_content: bool = False,
    ) -> WriteResult:
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            self.guard.check_write(self.session, resource["resourceType"], resource, None)
        return super().create(
            resource, res_id=res_id, fresh_id=fresh_id, shared_content=shared_content
        )

    def update(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
    ) -> WriteResult:
        row = self.current_row(res_type, res_id)
        previous = row.content if row is not None and not row.deleted else None
        new = resource if isinstance(resource, dict) else None
        self.guard.check_write(self.session, res_type, new or {"resourceType": res_type}, previous)
        return super().update(res_type, res_id, resource, if_match=if_match)

    def delete(self, res_type: str, res_id: str, *, if_match: int | None = None) -> int | None:
        row = self.current_row(res_type, res_id)
        if row is not None and not row.deleted:
            self.guard.check_write(self.session, res_type, None, row.content)
        else:  # nothing to delete: still only for those who may delete such a resource
            self.guard.check_write(
                self.session, res_type, None, {"resourceType": res_type, "id": res_id}
            )
        return super().delete(res_type, res_id, if_match=if_match)
