"""FHIR interactions above plain CRUD: conditional operations, search, ``$everything``.

The REST router and the CLI call this service; it coordinates the store (writes, reads) and the
search engine (conditional matching) and records search/read access in the audit chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    ScalarSelect,
    String,
    any_,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from yilian.fhir import search as search_engine
from yilian.fhir.access import AccessGuard
from yilian.fhir.compartment import patient_compartment, patients_of
from yilian.fhir.errors import invalid, precondition_failed
from yilian.fhir.guarded import GuardedStore
from yilian.fhir.models import ReferenceIndex, ResourceRow
from yilian.fhir.search.includes import Restriction
from yilian.fhir.store import Access, ResourceStore, StoreOptions, WriteResult
from yilian.mpi.links import linked_ids

# ``$everything`` reads plain rows, not ORM entities: building ~500 mapped instances (identity
# map, instance state) cost more than decoding their JSON (bench/store_queries.py --profile).
_COLUMNS = (
    ResourceRow.pk,
    ResourceRow.res_type,
    ResourceRow.res_id,
    ResourceRow.deleted,
    ResourceRow.content,
)
_Doc = Row[int, str, str, bool, dict[str, object]]  # one row of _COLUMNS

# R4's patient compartment lists AuditEvent (through ``patient``), but ``$everything`` leaves it
# out (ADR 0011): the access log is not the patient's record, it is admin-only (ADR 0004), and
# every call's own AuditEvent would join the compartment, so the answer would grow with each
# look. ``AuditEvent?patient=`` (admins) is where a patient's accesses are found.
EVERYTHING_LEAVES_OUT = ("AuditEvent",)


@cache
def _compartment_keys() -> list[str]:
    """``Type:param`` of the search parameters that make a resource a compartment member."""
    return sorted(
        f"{res_type}:{param}"
        for res_type, params in patient_compartment().items()
        if res_type not in EVERYTHING_LEAVES_OUT
        for param in params
    )


def parse_query(query: str) -> list[tuple[str, str]]:
    """Split ``a=1&b=2`` (the part after ``?``) into search parameters, keeping repeats."""
    return parse_qsl(query, keep_blank_values=True)


class FhirService:
    def __init__(
        self,
        session: Session,
        base_url: str,
        options: StoreOptions,
        *,
        guard: AccessGuard | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.guard = guard
        if guard is not None:
            guard.bind(session)
        self.store: ResourceStore = (
            GuardedStore(session, options, guard) if guard else ResourceStore(session, options)
        )

    def _restriction(self) -> Restriction | None:
        return self.guard.search_clause if self.guard is not None else None

    def _owner(self) -> str | None:
        return self.guard.owner if self.guard is not None else None

    # -------------------------------------------------------------- search

    def search(self, res_type: str | None, params: list[tuple[str, str]]) -> dict[str, Any]:
        self.store.flush()
        bundle = search_engine.search(
            self.session,
            res_type,
            params,
            base_url=self.base_url,
            restriction=self._restriction(),
            owner=self._owner(),
        )
        self._audit_bundle("search", bundle, query=_query_text(res_type, params))
        return bundle

    def page(self, search_id: str, offset: int, count: int) -> dict[str, Any]:
        self.store.flush()
        bundle = search_engine.get_page(
            self.session,
            search_id,
            offset,
            count,
            base_url=self.base_url,
            owner=self._owner(),
            restriction=self._restriction(),
        )
        self._audit_bundle("search", bundle, query=f"_getpages={search_id}")
        return bundle

    def matching_ids(self, res_type: str, query: str, *, limit: int = 2) -> list[str]:
        """Ids of current resources matching a conditional query (at most ``limit``)."""
        self.store.flush()
        params = parse_query(query)
        if not params:
            raise invalid(
                f"a conditional {res_type} request needs search criteria after '?'",
                rule="conditional-criteria",
            )
        bundle = search_engine.search(
            self.session,
            res_type,
            [*params, ("_count", str(limit)), ("_total", "none")],
            base_url=self.base_url,
            restriction=self._restriction(),
        )
        return [
            e["resource"]["id"]
            for e in bundle.get("entry", [])
            if e.get("search", {}).get("mode", "match") == "match"
        ]

    # --------------------------------------------------------- conditional

    def create(self, resource: dict[str, Any], *, if_none_exist: str | None = None) -> WriteResult:
        if if_none_exist:
            res_type = str(resource.get("resourceType", ""))
            found = self.matching_ids(res_type, if_none_exist.split("?", 1)[-1])
            if len(found) > 1:
                raise precondition_failed(
                    f"If-None-Exist '{if_none_exist}' matches more than one {res_type}",
                    rule="conditional-create-single-match",
                )
            if found:
                existing = self.store.read(res_type, found[0])
                version = int(existing.get("meta", {}).get("versionId", "1"))
                row = self.store.current_row(res_type, found[0])
                assert row is not None
                return WriteResult(existing, False, version, row.last_updated, unchanged=True)
        return self.store.create(resource)

    def conditional_update(
        self, res_type: str, query: str, resource: dict[str, Any]
    ) -> WriteResult:
        found = self.matching_ids(res_type, query)
        if len(found) > 1:
            raise precondition_failed(
                f"conditional update '{res_type}?{query}' matches more than one resource",
                rule="conditional-update-single-match",
            )
        if found:
            if "id" in resource and resource["id"] != found[0]:
                raise invalid(
                    f"resource id {resource['id']!r} differs from the matched {found[0]!r}",
                    expression=f"{res_type}.id",
                    rule="conditional-update-id",
                )
            return self.store.update(res_type, found[0], {**resource, "id": found[0]})
        if "id" in resource:
            return self.store.update(res_type, str(resource["id"]), resource)
        return self.store.create(resource)

    def conditional_delete(self, res_type: str, query: str) -> int:
        found = self.matching_ids(res_type, query)
        if len(found) > 1:
            raise precondition_failed(
                f"conditional delete '{res_type}?{query}' matches more than one resource",
                rule="conditional-delete-single-match",
            )
        for res_id in found:
            self.store.delete(res_type, res_id)
        return len(found)

    # ---------------------------------------------------------- everything

    def everything(self, patient_id: str, *, count: int | None = None) -> dict[str, Any]:
        """The patient, every resource in its compartment, and the resources those reference."""
        self.store.flush()
        patient = self.store.read("Patient", patient_id, audit=False)
        # The whole person: every registration linked to this one (Patient.link, docs/mpi.md
        # "Persons and links"), each with its own compartment. Most patients have no link; the
        # compartment tells without a look-up of its own (ADR 0018): a Patient linking *to*
        # this one is a member (R4's compartment has Patient through ``link``), and the
        # patient's own links are in its content (the index holds exactly what the content has).
        members, included = self.compartment([patient_id])
        person: set[str] = set()
        if patient.get("link") or any(r.res_type == "Patient" for r in members):
            person = linked_ids(self.session, [patient_id]) - {patient_id}
            if person:
                members, included = self.compartment([patient_id, *sorted(person)])
        registrations = [
            r.content
            for r in (*members, *included)
            if r.res_type == "Patient" and r.res_id in person
        ]
        registrations = list({str(p["id"]): p for p in registrations}.values())
        included = [r for r in included if not (r.res_type == "Patient" and r.res_id in person)]
        ordered = [patient, *registrations]
        ordered += [r.content for r in members if r.res_type != "Patient"]
        if count is not None:
            ordered = ordered[:count]
        entries = [self._entry(r, "match") for r in ordered]
        entries += [self._entry(r.content, "include") for r in included]
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(ordered),
            "link": [
                {"relation": "self", "url": f"{self.base_url}/Patient/{patient_id}/$everything"}
            ],
            "entry": entries,
        }
        self._audit_bundle("everything", bundle, query=f"Patient/{patient_id}/$everything")
        return bundle

    def compartment(self, patient_ids: Sequence[str]) -> tuple[list[_Doc], list[_Doc]]:
        """The current members of these patients' compartments (AuditEvents excepted, see
        ``EVERYTHING_LEAVES_OUT``), ordered by type and age, and the current resources they
        reference that are not members (under the principal's access policy). Unaudited: the
        caller audits what it returns.

        Two statements, the member keys a subquery in both: each statement more was ~10 ms at
        a load of 8 on two cores (ADR 0011), and ~500 keys sent back as an IN list made the
        driver parse a statement of ~500 parameters.
        """
        if not patient_ids:
            return [], []
        members = (
            select(ReferenceIndex.resource_pk)
            .where(ReferenceIndex.target_type == "Patient")
            .where(ReferenceIndex.target_id.in_(sorted(set(patient_ids))))
            # A resource naming a patient only through a non-compartment parameter (e.g.
            # Observation.focus) is not a member. One "Type:param" key per row: a row-value IN
            # became ~100 ORed conditions on PostgreSQL, ~19 ms for 1,000 rows.
            .where(self._in_compartment_keys(ReferenceIndex.res_type + ":" + ReferenceIndex.param))
            .scalar_subquery()
        )
        found = list(
            self.session.execute(
                select(*_COLUMNS)
                .where(ResourceRow.pk.in_(members), ResourceRow.deleted.is_(False))
                .order_by(ResourceRow.res_type, ResourceRow.last_updated)
            )
        )
        return found, self._referenced_rows(members, found)

    def _in_compartment_keys(self, key: ColumnElement[str]) -> ColumnElement[bool]:
        """``key`` is one of ``_compartment_keys()``. On PostgreSQL one array parameter: ~100
        placeholders made both statements longer than psycopg's parse cache takes (4,096
        characters), so the driver re-parsed them on every request (ADR 0018)."""
        keys = _compartment_keys()
        if self.session.get_bind().dialect.name == "postgresql":
            return key == any_(literal(keys, ARRAY(String)))
        return key.in_(keys)

    def _referenced_rows(self, members: ScalarSelect[Any], found: list[_Doc]) -> list[_Doc]:
        """Current resources the members point at, members and patients left out: members
        mostly point at each other (Observation → Encounter), and loading them again would
        decode their JSON twice.

        Two statements — the distinct targets, then the resources by their unique key — where
        one join was enough on a small store: on the full district (11.6 M resources, bulk
        loaded) PostgreSQL's sampled statistics put 120,981 distinct owners in ``idx_reference``
        (there are ~11.6 M), expected ~100,000 targets instead of ~50 and scanned the whole of
        ``fhir_resource``: 4-5 s per call (docs/benchmarks.md, "$everything … full district").
        With the member keys and the targets as array constants every step is an index look-up
        whatever the statistics say."""
        postgres = self.session.get_bind().dialect.name == "postgresql"
        member_pks = {row.pk for row in found}
        owners: ColumnElement[bool] = (
            ReferenceIndex.resource_pk == any_(literal(sorted(member_pks), ARRAY(BigInteger)))
            if postgres
            else ReferenceIndex.resource_pk.in_(members)
        )
        # Distinct targets first: ~1,500 references of ~500 members name ~200 resources.
        targets: dict[str, set[str]] = {}
        for target_type, target_id in self.session.execute(
            select(ReferenceIndex.target_type, ReferenceIndex.target_id)
            .where(owners, ReferenceIndex.target_type != "Patient")
            .distinct()
        ):
            if target_type is not None and target_id is not None:
                targets.setdefault(target_type, set()).add(target_id)
        if not targets:
            return []
        by_key = [
            (ResourceRow.res_type == res_type)
            & (
                ResourceRow.res_id == any_(literal(sorted(ids), ARRAY(String)))
                if postgres
                else ResourceRow.res_id.in_(sorted(ids))
            )
            for res_type, ids in sorted(targets.items())
        ]
        query = select(*_COLUMNS).where(or_(*by_key), ResourceRow.deleted.is_(False))
        # Only the rules of the targets' types (ADR 0020): the same rows pass.
        clause = (
            self.guard.search_clause(ResourceRow, types=sorted(targets))
            if self.guard is not None
            else None
        )
        if clause is not None:  # referenced resources the principal may not see stay out
            query = query.where(clause)
        return [row for row in self.session.execute(query) if row.pk not in member_pks]

    def _entry(self, resource: dict[str, Any], mode: str) -> dict[str, Any]:
        return {
            "fullUrl": f"{self.base_url}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "search": {"mode": mode},
        }

    def _audit_bundle(self, event: str, bundle: dict[str, Any], *, query: str) -> None:
        returned = [
            e["resource"]
            for e in bundle.get("entry", [])
            if isinstance(e.get("resource"), dict) and "id" in e["resource"]
        ]
        touched = tuple(f"{r['resourceType']}/{r['id']}" for r in returned)
        patients = tuple(sorted({p for r in returned for p in patients_of(r)}))
        self.store.audit(Access(event, touched, patients, query=query))


def _query_text(res_type: str | None, params: list[tuple[str, str]]) -> str:
    return f"{res_type or ''}?{urlencode(params)}"
