"""What a running server holds: the engine, the session factory, and the per-request unit of work.

``Runtime.transaction`` is the one place where a request's database transaction is opened and
committed (STYLE.md §3); services and the store only flush.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from yilian.audit.codes import purposes_of_use
from yilian.db import session_factory, unit_of_work
from yilian.fhir.access import AccessGuard
from yilian.fhir.auditing import Actor, AuditBuffer
from yilian.fhir.bundle import BundleProcessor
from yilian.fhir.errors import invalid
from yilian.fhir.service import FhirService, parse_query
from yilian.fhir.store import StoreOptions, WriteHook

T = TypeVar("T")
# Builds one request's write hook from its context (who is asking): see StoreOptions.write_hooks.
WriteHookFactory = Callable[["RequestContext"], WriteHook]


@dataclass(frozen=True)
class RequestContext:
    """Who is asking and why — recorded with every audited access.

    ``actor`` is the authenticated principal (``user/<username>``, set by
    ``yilian.auth.enforce.request_context``); ``guard`` enforces that principal's access rules on
    every read, write and search of the request; ``note`` is recorded with each entry (the
    break-glass reason). The purpose of use comes from ``X-Purpose-Of-Use`` (default TREAT).
    """

    actor: str
    purpose: str
    source: str
    request_id: str
    role: str | None = None
    guard: AccessGuard | None = None
    note: str | None = None

    @classmethod
    def from_request(cls, request: Request, *, actor: str = "anonymous") -> RequestContext:
        purpose = request.headers.get("x-purpose-of-use", "TREAT").upper()
        if purpose not in purposes_of_use():
            raise invalid(
                f"X-Purpose-Of-Use {purpose!r} is not a PurposeOfUse code of "
                "http://terminology.hl7.org/CodeSystem/v3-ActReason (e.g. TREAT, PUBHLTH)",
                rule="purpose-of-use",
            )
        client = request.client.host if request.client else "unknown"
        return cls(
            actor=actor,
            purpose=purpose,
            source=client,
            request_id=request.headers.get("x-request-id", str(uuid.uuid4()))[:100],
        )

    def as_actor(self) -> Actor:
        kind = "system" if self.actor.startswith("system/") else "user"
        return Actor(
            self.actor, self.purpose, self.source, self.request_id, kind, self.role, self.note
        )

    @classmethod
    def system(cls, actor: str = "system/yilian-cli") -> RequestContext:
        return cls(
            actor=actor, purpose="HSYSADMIN", source="localhost", request_id=str(uuid.uuid4())
        )


class Runtime:
    def __init__(self, engine: Engine, base_url: str, *, validate: bool = True) -> None:
        self.engine = engine
        self.base_url = base_url.rstrip("/")
        self.validate = validate
        self.resident_ids = "reject"  # StoreOptions.resident_ids (Settings.resident_ids)
        self.sessions: sessionmaker[Session] = session_factory(engine)
        self.write_hooks: list[WriteHookFactory] = []  # domain rules on writes (referral)

    @contextmanager
    def transaction(
        self, ctx: RequestContext, *, audit_as: str | None = None
    ) -> Iterator[FhirService]:
        """One request, one transaction: committed on success, rolled back on any error.

        ``audit_as`` (``transaction``/``batch``) records the whole unit as one audit entry.
        """
        try:
            with self._unit(ctx, audit_as) as service:
                yield service
        finally:
            self.audit_denials(ctx)

    def audit_denials(self, ctx: RequestContext) -> None:
        """Append the request's refusals to the chain in their own transaction: the request's
        own transaction rolled back (or committed without them), the denial must stay."""
        denials = ctx.guard.take_denials() if ctx.guard is not None else []
        if not denials:
            return
        with unit_of_work(self.sessions) as session:
            buffer = AuditBuffer(ctx.as_actor())
            buffer.pending = list(denials)
            buffer.flush(session)

    @contextmanager
    def _unit(self, ctx: RequestContext, audit_as: str | None) -> Iterator[FhirService]:
        with unit_of_work(self.sessions) as session:
            buffer = AuditBuffer(ctx.as_actor(), merge_as=audit_as)
            hooks = tuple(factory(ctx) for factory in self.write_hooks)
            options = StoreOptions(
                validate=self.validate,
                audit=buffer.record,
                write_hooks=hooks,
                resident_ids=self.resident_ids,
            )
            service = FhirService(session, self.base_url, options, guard=ctx.guard)
            yield service
            service.store.flush()
            buffer.flush(session)

    def process_bundle(
        self, ctx: RequestContext, kind: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        with self.transaction(ctx, audit_as=kind) as service:
            processor = BundleProcessor(service, lambda url: self._bundle_get(service, url))
            if kind == "transaction":
                return processor.transaction(body)
            return processor.batch(body)

    def _bundle_get(self, service: FhirService, url: str) -> tuple[str, dict[str, Any]]:
        path, _, query = url.partition("?")
        parts = [p for p in path.split("/") if p]
        if len(parts) == 1:
            return "200 OK", service.search(parts[0], parse_query(query))
        if len(parts) == 2:
            return "200 OK", service.store.read(parts[0], parts[1])
        if len(parts) == 4 and parts[2] == "_history":
            return "200 OK", service.store.vread(parts[0], parts[1], int(parts[3]))
        raise invalid(f"unsupported GET url in Bundle: {url}", rule="bundle-entry-url")

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args)
