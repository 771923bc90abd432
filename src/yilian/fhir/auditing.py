"""The audit choke point of the FHIR store: every access becomes one entry in the hash chain.

The store reports each access to a request-scoped ``AuditBuffer``; the unit of work appends the
buffered entries to the chain as its last step before commit (the chain lock is then held only
for the append, and a rolled-back request leaves no entry). Each entry is also written to the
store as a FHIR AuditEvent (id ``audit-{seq}``) so it is searchable like any other resource.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from yilian.audit.chain import append_batch
from yilian.audit.fhir import to_audit_event
from yilian.audit.models import AuditInput
from yilian.fhir.store import Access, ResourceStore, StoreOptions

# Store events that the audit vocabulary names differently.
EVENT_NAMES = {"everything": "operation"}


@dataclass(frozen=True)
class Actor:
    """Who is acting and why, as the chain records it."""

    actor: str
    purpose: str
    source: str
    request_id: str
    kind: str = "user"
    role: str | None = None  # the principal's role (yilian.auth.Role)
    note: str | None = None  # said of every entry of the request (the break-glass reason)


@dataclass
class AuditBuffer:
    actor: Actor
    merge_as: str | None = None  # record the whole unit as one entry of this event
    pending: list[Access] = field(default_factory=list)

    def record(self, _session: Session, access: Access) -> None:
        self.pending.append(access)

    def flush(
        self, session: Session, project: Callable[[list[dict[str, Any]]], None] | None = None
    ) -> None:
        """Append every buffered access to the chain and project each as an AuditEvent.

        ``project`` writes the AuditEvents instead of ``ResourceStore.create`` (the bulk loader
        writes them with its batch writer, as ``POST``-created version 1 like the store does).
        """
        if not self.pending:
            return
        accesses = [self._merged()] if self.merge_as else self.pending
        entries = [self._input(a) for a in accesses]
        self.pending = []
        events = [to_audit_event(record) for record in append_batch(session, entries)]
        if project is not None:
            project(events)
            return
        store = ResourceStore(session, StoreOptions(validate=False, audit=None))
        for event in events:
            # ``audit-<seq>``: the chain's sequence is unique under its lock, so the id is new
            # and the store skips the existence check and the savepoint (ADR 0013). Its version
            # row shares the resource row's content: a $everything's AuditEvent is ~170 KB and
            # was written twice (ADR 0018).
            store.create(event, res_id=event["id"], fresh_id=True, shared_content=True)
        store.flush()

    def _merged(self) -> Access:
        resources = tuple(dict.fromkeys(r for a in self.pending for r in a.resources))
        patients = tuple(sorted({p for a in self.pending for p in a.patients}))
        return Access(str(self.merge_as), resources, patients)

    def _input(self, access: Access) -> AuditInput:
        return AuditInput(
            actor=self.actor.actor,
            actor_kind=self.actor.kind,
            event=EVENT_NAMES.get(access.event, access.event),
            purpose=self.actor.purpose,
            resources=list(access.resources),
            patients=list(access.patients),
            outcome=int(access.outcome),
            outcome_desc=access.outcome_desc or self.actor.note,
            actor_role=self.actor.role,
            source_address=self.actor.source,
            request_id=self.actor.request_id,
            query=access.query,
        )
