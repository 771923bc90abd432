"""Bundle ``transaction`` (all or nothing) and ``batch`` (each entry on its own) at ``POST /fhir``.

Transaction order follows the FHIR spec (http.html#trules): DELETE, POST, PUT/PATCH, GET. Before
any write, every POST entry gets its id (or, with ``ifNoneExist``, the id of the existing match)
so that ``urn:uuid:`` fullUrls and conditional references (``Patient?identifier=…``) can be
rewritten everywhere in the Bundle; then entries are applied in that order inside the caller's
transaction. Any failure raises, naming the entry, so the edge rolls everything back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from yilian.fhir.errors import FhirError, Issue, invalid, precondition_failed
from yilian.fhir.notes import outcome_for
from yilian.fhir.service import FhirService
from yilian.fhir.store import WriteResult, format_instant, new_id

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}

# GET entries inside a Bundle are answered by the router's read/search machinery.
GetHandler = Callable[[str], tuple[str, dict[str, Any]]]


@dataclass
class Entry:
    index: int
    method: str
    url: str
    full_url: str | None
    resource: dict[str, Any] | None
    if_none_exist: str | None = None
    if_match: str | None = None
    assigned_id: str | None = None
    existing: bool = False
    fresh_id: bool = False  # assigned here by new_id(), so it cannot collide
    response: dict[str, Any] = field(default_factory=dict)


def check_bundle(body: Any) -> str:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise invalid("POST /fhir expects a Bundle", expression="resourceType", rule="bundle")
    kind = body.get("type")
    if kind not in ("transaction", "batch"):
        raise invalid(
            f"Bundle.type must be 'transaction' or 'batch', not {kind!r}",
            expression="Bundle.type",
            rule="bundle-type",
        )
    entries = body.get("entry", [])
    if not isinstance(entries, list):
        raise invalid("Bundle.entry must be a list", expression="Bundle.entry", rule="bundle")
    return str(kind)


def parse_entries(body: dict[str, Any]) -> list[Entry]:
    parsed: list[Entry] = []
    for index, raw in enumerate(body.get("entry", [])):
        path = f"Bundle.entry[{index}]"
        request = raw.get("request") if isinstance(raw, dict) else None
        if not isinstance(request, dict):
            raise invalid(
                "each entry needs a request",
                expression=f"{path}.request",
                rule="bundle-entry-request",
            )
        method = str(request.get("method", "")).upper()
        if method not in ORDER:
            raise invalid(
                f"unsupported request.method {method!r}",
                expression=f"{path}.request.method",
                rule="bundle-entry-method",
            )
        url = str(request.get("url", "")).strip()
        if not url:
            raise invalid(
                "request.url is required", expression=f"{path}.request.url", rule="bundle-entry-url"
            )
        resource = raw.get("resource")
        if method in ("POST", "PUT") and not isinstance(resource, dict):
            raise invalid(
                f"a {method} entry needs a resource",
                expression=f"{path}.resource",
                rule="bundle-entry-resource",
            )
        parsed.append(
            Entry(
                index=index,
                method=method,
                url=url.lstrip("/"),
                full_url=raw.get("fullUrl"),
                resource=resource,
                if_none_exist=request.get("ifNoneExist"),
                if_match=request.get("ifMatch"),
            )
        )
    return parsed


def rewrite_references(value: Any, mapping: dict[str, str]) -> Any:
    """Replace every ``reference`` whose value is a key of ``mapping`` (urn:uuid, conditional)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and item in mapping:
                out[key] = mapping[item]
            else:
                out[key] = rewrite_references(item, mapping)
        return out
    if isinstance(value, list):
        return [rewrite_references(v, mapping) for v in value]
    return value


def collect_conditional_references(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and "?" in item:
                found.add(item)
            else:
                collect_conditional_references(item, found)
    elif isinstance(value, list):
        for item in value:
            collect_conditional_references(item, found)


def entry_error(entry: Entry, error: FhirError) -> FhirError:
    """Prefix every issue with the entry it came from, keeping the status."""
    issues = [
        Issue(
            f"Bundle.entry[{entry.index}] ({entry.method} {entry.url}): {i.message}",
            code=i.code,
            severity=i.severity,
            expression=i.expression,
            rule=i.rule,
        )
        for i in error.issues
    ]
    return FhirError(error.status, issues)


def _split_url(url: str) -> tuple[str, str | None, str | None]:
    """``Type``, ``Type/id`` or ``Type?query`` → (type, id, query)."""
    path = urlsplit(url)
    parts = [p for p in path.path.split("/") if p]
    res_type = parts[0] if parts else ""
    res_id = parts[1] if len(parts) > 1 else None
    return res_type, res_id, path.query or None


def _write_response(
    result: WriteResult, status: str, outcome: dict[str, Any] | None = None
) -> dict[str, Any]:
    ref = result.reference
    response: dict[str, Any] = {
        "status": status,
        "location": f"{ref}/_history/{result.version_id}",
        "etag": f'W/"{result.version_id}"',
        "lastModified": format_instant(result.last_updated),
    }
    if outcome is not None:  # what a write hook did (yilian.fhir.notes), e.g. a patient match
        response["outcome"] = outcome
    return response


def _version_of(if_match: str | None) -> int | None:
    if not if_match:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise invalid(f'ifMatch {if_match!r} is not an ETag like W/"3"', rule="if-match-etag")
    return int(text)


class BundleProcessor:
    def __init__(self, service: FhirService, get_handler: GetHandler) -> None:
        self.service = service
        self.get_handler = get_handler

    def transaction(self, body: dict[str, Any]) -> dict[str, Any]:
        entries = parse_entries(body)
        mapping = self._assign_ids(entries)
        for entry in sorted(entries, key=lambda e: (ORDER[e.method], e.index)):
            try:
                self._apply(entry, mapping)
            except FhirError as error:
                raise entry_error(entry, error) from error
        return self._response("transaction-response", entries)

    def batch(self, body: dict[str, Any]) -> dict[str, Any]:
        entries = parse_entries(body)
        for entry in entries:
            try:
                with self.service.session.begin_nested():
                    self._apply(entry, self._assign_ids([entry]))
            except FhirError as error:
                entry.response = {
                    "status": str(error.status),
                    "outcome": entry_error(entry, error).outcome(),
                }
        return self._response("batch-response", entries)

    # ---------------------------------------------------------------- steps

    def _assign_ids(self, entries: list[Entry]) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for entry in entries:
            if entry.method != "POST" or entry.resource is None:
                continue
            res_type = str(entry.resource.get("resourceType", ""))
            if entry.if_none_exist:
                try:
                    found = self.service.matching_ids(
                        res_type, entry.if_none_exist.split("?", 1)[-1]
                    )
                except FhirError as error:
                    raise entry_error(entry, error) from error
                if len(found) > 1:
                    raise entry_error(
                        entry,
                        precondition_failed(
                            f"ifNoneExist matches {len(found)} resources",
                            rule="conditional-create-single-match",
                        ),
                    )
                if found:
                    entry.assigned_id, entry.existing = found[0], True
            if entry.assigned_id is None:
                entry.assigned_id, entry.fresh_id = new_id(), True
            if entry.full_url:
                mapping[entry.full_url] = f"{res_type}/{entry.assigned_id}"
        for entry in entries:
            if entry.method == "PUT" and entry.full_url and entry.resource is not None:
                res_type, res_id, query = _split_url(entry.url)
                if res_id and not query:
                    mapping.setdefault(entry.full_url, f"{res_type}/{res_id}")
        conditional: set[str] = set()
        for entry in entries:
            collect_conditional_references(entry.resource, conditional)
        for reference in sorted(conditional):
            res_type, query = reference.split("?", 1)
            found = self.service.matching_ids(res_type, query)
            if len(found) != 1:
                raise invalid(
                    f"conditional reference '{reference}' matches {len(found)} resources; "
                    "it must match exactly one",
                    rule="conditional-reference-single-match",
                    status=412 if found else 400,
                )
            mapping[reference] = f"{res_type}/{found[0]}"
        return mapping

    def _apply(self, entry: Entry, mapping: dict[str, str]) -> None:
        service = self.service
        resource = rewrite_references(entry.resource, mapping) if entry.resource else None
        res_type, res_id, query = _split_url(entry.url)
        if entry.method == "POST":
            assert resource is not None and entry.assigned_id is not None
            if entry.existing:
                existing = service.store.read(res_type, entry.assigned_id, audit=False)
                row = service.store.current_row(res_type, entry.assigned_id)
                assert row is not None
                version = int(existing["meta"]["versionId"])
                result = WriteResult(existing, False, version, row.last_updated, unchanged=True)
                entry.response = _write_response(result, "200 OK")
                return
            if resource.get("resourceType") != res_type:
                raise invalid(
                    f"request.url type {res_type!r} differs from resourceType "
                    f"{resource.get('resourceType')!r}",
                    expression="resourceType",
                    rule="resource-type-mismatch",
                )
            result = service.store.create(
                resource, res_id=entry.assigned_id, fresh_id=entry.fresh_id
            )
            note = outcome_for(service.session, result.reference)
            entry.response = _write_response(result, "201 Created", note)
        elif entry.method == "PUT":
            assert resource is not None
            if query:
                result = service.conditional_update(res_type, query, resource)
            elif res_id:
                result = service.store.update(
                    res_type, res_id, resource, if_match=_version_of(entry.if_match)
                )
            else:
                raise invalid("PUT needs Type/id or Type?criteria", rule="bundle-entry-url")
            status = "201 Created" if result.created else "200 OK"
            note = outcome_for(service.session, result.reference)
            entry.response = _write_response(result, status, note)
        elif entry.method == "DELETE":
            if query:
                service.conditional_delete(res_type, query)
            elif res_id:
                service.store.delete(res_type, res_id, if_match=_version_of(entry.if_match))
            else:
                raise invalid("DELETE needs Type/id or Type?criteria", rule="bundle-entry-url")
            entry.response = {"status": "204 No Content"}
        elif entry.method in ("GET", "HEAD"):
            status, body = self.get_handler(entry.url)
            entry.response = {"status": status}
            if entry.method == "GET":
                entry.response["resource"] = body
        else:
            raise invalid(
                f"{entry.method} is not supported in a Bundle", rule="bundle-entry-method"
            )

    def _response(self, kind: str, entries: list[Entry]) -> dict[str, Any]:
        out_entries = []
        for entry in entries:
            response = {k: v for k, v in entry.response.items() if k != "resource"}
            item: dict[str, Any] = {"response": response}
            if entry.response.get("resource") is not None:
                item["resource"] = entry.response["resource"]
            if entry.full_url:
                item["fullUrl"] = entry.full_url
            out_entries.append(item)
        return {"resourceType": "Bundle", "type": kind, "entry": out_entries}
