"""The FHIR R4 REST router at ``/fhir``: parse the HTTP request, call the service, shape the reply.

One unit of work per request (``Runtime.transaction``): it commits when the handler returns and
rolls back when it raises, so an error never leaves a half-written change. Every error becomes an
OperationOutcome in ``install_error_handlers``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from yilian.fhir.bundle import check_bundle
from yilian.fhir.capability import capability_statement
from yilian.fhir.errors import FhirError, Issue, invalid, not_supported, operation_outcome
from yilian.fhir.notes import headers_for
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.fhir.searchparams.registry import resource_types
from yilian.fhir.service import FhirService, parse_query
from yilian.fhir.store import HistoryEntry, format_instant
from yilian.jsonutil import dumps

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"
DEFAULT_HISTORY_COUNT = 100  # must match ResourceStore.history's default page size
MAX_HISTORY_COUNT = 1000
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # http://hl7.org/fhir/R4/datatypes.html#id


def fhir_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Render every failure as an OperationOutcome with a meaningful status — never a bare 500."""

    @app.exception_handler(FhirError)
    async def _fhir_error(_request: Request, exc: FhirError) -> Response:
        return fhir_response(exc.outcome(), exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        issues = [
            Issue(str(e.get("msg")), expression=".".join(str(p) for p in e.get("loc", ())))
            for e in exc.errors()
        ]
        return fhir_response(operation_outcome(issues), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        code = "not-found" if exc.status_code == 404 else "processing"
        return fhir_response(
            operation_outcome([Issue(str(exc.detail), code=code)]), exc.status_code
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        issue = Issue(
            f"internal error ({type(exc).__name__}); nothing was changed", code="exception"
        )
        return fhir_response(operation_outcome([issue]), 500)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def context_of(request: Request) -> RequestContext:
    """Who is asking (401 without a valid credential) and the guard of their access rules."""
    from yilian.auth.enforce import request_context  # auth builds on this package

    return request_context(request)


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]
ContextDep = Annotated[RequestContext, Depends(context_of)]


def check_type(res_type: str) -> str:
    if res_type not in resource_types():
        raise not_supported(f"'{res_type}' is not a FHIR R4 resource type", status=404)
    return res_type


def check_id(res_type: str, res_id: str) -> None:
    if not ID_PATTERN.fullmatch(res_id):
        raise invalid(
            f"'{res_id}' is not a valid FHIR id", expression=f"{res_type}.id", rule="id-format"
        )


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise invalid(
            "the request body is empty; a FHIR JSON resource is expected", rule="body-required"
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"the body is not valid JSON: {exc}", rule="json-syntax") from exc


def version_from_etag(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise FhirError(
            400, [Issue(f'If-Match {value!r} is not an ETag like W/"3"', rule="if-match-etag")]
        )
    return int(text)


def write_headers(base_url: str, resource: dict[str, Any]) -> dict[str, str]:
    meta = resource.get("meta", {})
    version = meta.get("versionId", "1")
    headers = {
        "ETag": f'W/"{version}"',
        "Location": f"{base_url}/{resource['resourceType']}/{resource['id']}/_history/{version}",
    }
    if meta.get("lastUpdated"):
        headers["Last-Modified"] = http_date(meta["lastUpdated"])
    return headers


def http_date(instant: str) -> str:
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return format_datetime(moment, usegmt=True)


def history_links(
    request: Request, entries: list[HistoryEntry], total: int
) -> list[dict[str, str]]:
    """self/next/previous links; later pages pin ``_at`` so new versions cannot shift them."""
    q = dict(request.query_params)
    offset = int(q.get("_offset", "0") or 0)
    count = int(q.get("_count", str(DEFAULT_HISTORY_COUNT)) or DEFAULT_HISTORY_COUNT)
    if "_at" not in q and entries:
        q["_at"] = format_instant(entries[0].last_updated)
    base = str(request.url).split("?", 1)[0]

    def page(start: int) -> str:
        return f"{base}?{urlencode(q | {'_offset': str(start), '_count': str(count)})}"

    links = [{"relation": "self", "url": str(request.url)}]
    if offset + count < total and count > 0:
        links.append({"relation": "next", "url": page(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": page(max(0, offset - count))})
    return links


def history_bundle(
    base_url: str, entries: list[HistoryEntry], total: int, request: Request
) -> dict[str, Any]:
    items = []
    for e in entries:
        item: dict[str, Any] = {
            "fullUrl": f"{base_url}/{e.res_type}/{e.res_id}",
            "request": {
                "method": e.method,
                "url": e.res_type if e.method == "POST" else f"{e.res_type}/{e.res_id}",
            },
            "response": {
                "status": {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}[
                    e.method
                ],
                "etag": f'W/"{e.version_id}"',
                "lastModified": format_instant(e.last_updated),
            },
        }
        if e.content is not None:
            item["resource"] = e.content
        items.append(item)
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": history_links(request, entries, total),
        "entry": items,
    }


def history_params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {}
    q = request.query_params
    try:
        if "_count" in q:
            params["count"] = max(0, min(int(q["_count"]), MAX_HISTORY_COUNT))
        if "_since" in q:
            params["since"] = datetime.fromisoformat(q["_since"].replace("Z", "+00:00"))
        if "_at" in q:
            params["at"] = datetime.fromisoformat(q["_at"].replace("Z", "+00:00"))
        if "_offset" in q:
            params["offset"] = max(0, int(q["_offset"]))
    except ValueError as exc:
        raise invalid(f"bad history parameter: {exc}", rule="history-parameters") from exc
    for key in ("since", "at"):
        if key in params and params[key].tzinfo is not None:
            params[key] = params[key].astimezone(UTC).replace(tzinfo=None)
    return params


router = APIRouter(prefix="/fhir", tags=["FHIR R4"])


@contextmanager
def service_for(runtime: Runtime, ctx: RequestContext) -> Iterator[FhirService]:
    with runtime.transaction(ctx) as service:
        yield service


@router.get("/metadata")
def metadata(runtime: RuntimeDep) -> Response:
    return fhir_response(capability_statement(runtime.base_url))


@router.get("")
def system_search(request: Request, runtime: RuntimeDep, ctx: ContextDep) -> Response:
    q = request.query_params
    with service_for(runtime, ctx) as service:
        if "_getpages" in q:
            try:
                offset = int(q.get("_getpagesoffset", "0"))
                count = int(q.get("_count", "20"))
            except ValueError as exc:
                raise invalid("paging parameters must be integers", rule="paging") from exc
            return fhir_response(service.page(q["_getpages"], offset, count))
        return fhir_response(service.search(None, list(q.multi_items())))


@router.post("")
async def transaction_or_batch(request: Request, runtime: RuntimeDep, ctx: ContextDep) -> Response:
    body = await read_json(request)
    kind = check_bundle(body)
    result = await runtime.run_sync(runtime.process_bundle, ctx, kind, body)
    return fhir_response(result)


@router.get("/_history")
def system_history(request: Request, runtime: RuntimeDep, ctx: ContextDep) -> Response:
    with service_for(runtime, ctx) as service:
        entries, total = service.store.history(**history_params(request))
        return fhir_response(history_bundle(runtime.base_url, entries, total, request))


@router.get("/{res_type}")
def type_search(res_type: str, request: Request, runtime: RuntimeDep, ctx: ContextDep) -> Response:
    check_type(res_type)
    with service_for(runtime, ctx) as service:
        return fhir_response(service.search(res_type, list(request.query_params.multi_items())))


@router.post("/{res_type}/_search")
async def type_search_post(
    res_type: str, request: Request, runtime: RuntimeDep, ctx: ContextDep
) -> Response:
    check_type(res_type)
    raw = (await request.body()).decode("utf-8")
    params = list(request.query_params.multi_items()) + parse_query(raw)

    def run() -> dict[str, Any]:
        with service_for(runtime, ctx) as service:
            return service.search(res_type, params)

    return fhir_response(await runtime.run_sync(run))


@router.post("/{res_type}")
async def create(res_type: str, request: Request, runtime: RuntimeDep, ctx: ContextDep) -> Response:
    check_type(res_type)
    body = await read_json(request)
    if_none_exist = request.headers.get("if-none-exist")

    def run() -> Response:
        with service_for(runtime, ctx) as service:
            if isinstance(body, dict) and body.get("resourceType") != res_type:
                raise invalid(
                    f"resourceType {body.get('resourceType')!r} does not match the URL type "
                    f"{res_type!r}",
                    expression="resourceType",
                    rule="resource-type-mismatch",
                )
            result = service.create(body, if_none_exist=if_none_exist)
            headers = write_headers(runtime.base_url, result.resource)
            headers.update(headers_for(service.session, result.reference))
            return fhir_response(result.resource, 200 if result.unchanged else 201, headers)

    return await runtime.run_sync(run)


@router.put("/{res_type}")
async def conditional_update(
    res_type: str, request: Request, runtime: RuntimeDep, ctx: ContextDep
) -> Response:
    check_type(res_type)
    body = await read_json(request)
    query = request.url.query

    def run() -> Response:
        with service_for(runtime, ctx) as service:
            result = service.conditional_update(res_type, query, body)
            headers = write_headers(runtime.base_url, result.resource)
            headers.update(headers_for(service.session, result.reference))
            return fhir_response(result.resource, 201 if result.created else 200, headers)

    return await runtime.run_sync(run)


@router.delete("/{res_type}")
def conditional_delete(
    res_type: str, request: Request, runtime: RuntimeDep, ctx: ContextDep
) -> Response:
    check_type(res_type)
    with service_for(runtime, ctx) as service:
        service.conditional_delete(res_type, request.url.query)
    return Response(status_code=204)


@router.get("/{res_type}/_history")
def type_history(res_type: str, request: Request, runtime: RuntimeDep, ctx: ContextDep) -> Response:
    check_type(res_type)
    with service_for(runtime, ctx) as service:
        entries, total = service.store.history(res_type, **history_params(request))
        return fhir_response(history_bundle(runtime.base_url, entries, total, request))


@router.api_route("/Patient/{res_id}/$everything", methods=["GET", "POST"])
def everything(res_id: str, request: Request, runtime: RuntimeDep, ctx: ContextDep) -> Response:
    check_id("Patient", res_id)
    count = request.query_params.get("_count")
    with service_for(runtime, ctx) as service:
        bundle = service.everything(res_id, count=int(count) if count and count.isdigit() else None)
        return fhir_response(bundle)


@router.get("/{res_type}/{res_id}")
def read(res_type: str, res_id: str, runtime: RuntimeDep, ctx: ContextDep) -> Response:
    check_type(res_type)
    check_id(res_type, res_id)
    with service_for(runtime, ctx) as service:
        resource = service.store.read(res_type, res_id)
    headers = write_headers(runtime.base_url, resource)
    headers.pop("Location")
    return fhir_response(resource, 200, headers)


@router.put("/{res_type}/{res_id}")
async def update(
    res_type: str, res_id: str, request: Request, runtime: RuntimeDep, ctx: ContextDep
) -> Response:
    check_type(res_type)
    check_id(res_type, res_id)
    body = await read_json(request)
    if_match = version_from_etag(request.headers.get("if-match"))

    def run() -> Response:
        with service_for(runtime, ctx) as service:
            result = service.store.update(res_type, res_id, body, if_match=if_match)
            headers = write_headers(runtime.base_url, result.resource)
            headers.update(headers_for(service.session, result.reference))
            return fhir_response(result.resource, 201 if result.created else 200, headers)

    return await runtime.run_sync(run)


@router.delete("/{res_type}/{res_id}")
def delete(
    res_type: str, res_id: str, request: Request, runtime: RuntimeDep, ctx: ContextDep
) -> Response:
    check_type(res_type)
    check_id(res_type, res_id)
    if_match = version_from_etag(request.headers.get("if-match"))
    with service_for(runtime, ctx) as service:
        version = service.store.delete(res_type, res_id, if_match=if_match)
    headers = {"ETag": f'W/"{version}"'} if version else {}
    return Response(status_code=204, headers=headers)


@router.get("/{res_type}/{res_id}/_history")
def instance_history(
    res_type: str, res_id: str, request: Request, runtime: RuntimeDep, ctx: ContextDep
) -> Response:
    check_type(res_type)
    check_id(res_type, res_id)
    with service_for(runtime, ctx) as service:
        entries, total = service.store.history(res_type, res_id, **history_params(request))
        return fhir_response(history_bundle(runtime.base_url, entries, total, request))


@router.get("/{res_type}/{res_id}/_history/{version_id}")
def vread(
    res_type: str, res_id: str, version_id: str, runtime: RuntimeDep, ctx: ContextDep
) -> Response:
    check_type(res_type)
    check_id(res_type, res_id)
    if not version_id.isdigit():
        raise invalid(
            f"version id {version_id!r} must be a positive integer", rule="version-id-format"
        )
    with service_for(runtime, ctx) as service:
        resource = service.store.vread(res_type, res_id, int(version_id))
    headers = write_headers(runtime.base_url, resource)
    headers.pop("Location")
    return fhir_response(resource, 200, headers)
