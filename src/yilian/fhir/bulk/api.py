"""Bulk Data HTTP endpoints: ``$export`` (system, Patient, one patient), ``$import``, job status.

Include this router *before* the main FHIR router: its literal paths (``/fhir/$export``,
``/fhir/Patient/$export``, ``/fhir/$import``) would otherwise be taken for ``/{type}`` and
``/{type}/{id}``.

Kick-off, status and file URLs follow https://hl7.org/fhir/uv/bulkdata/export.html. ``$import``
follows the same async pattern; its inputs are files on this server (docs/bulk.md): a path
relative to the data directory or a ``file://`` URL inside it — the server never fetches from
the network.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from yilian.config import load_settings
from yilian.fhir.api import ContextDep, RuntimeDep, fhir_response, read_json
from yilian.fhir.bulk import jobs
from yilian.fhir.bulk.export import ExportRequest, compartment_types, run_export
from yilian.fhir.bulk.importer import LoadAborted, Loader, LoadOptions, LoadReport
from yilian.fhir.bulk.models import BulkJobRow
from yilian.fhir.errors import Issue, invalid, not_found, operation_outcome
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.fhir.searchparams.registry import resource_types
from yilian.fhir.store import Access, format_instant
from yilian.jsonutil import dumps


def _bulk_access(request: Request) -> None:
    """Bulk data is for system administrators only (yilian.auth.policy.may_bulk)."""
    from yilian.auth.enforce import bulk_access  # auth builds on the FHIR layer

    bulk_access(request)


router = APIRouter(prefix="/fhir", tags=["FHIR Bulk Data"], dependencies=[Depends(_bulk_access)])

NDJSON_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FILE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}\.ndjson")


def require_async(request: Request) -> None:
    """Bulk kick-off requests must ask for the async pattern (bulkdata export.html, headers)."""
    prefer = request.headers.get("prefer", "")
    if "respond-async" not in [p.strip().lower() for p in prefer.split(",")]:
        raise invalid(
            "bulk requests run asynchronously: send the header 'Prefer: respond-async'",
            expression="Prefer",
            rule="bulk-prefer-respond-async",
        )


def status_url(runtime: Runtime, job_id: str) -> str:
    return f"{runtime.base_url}/$bulk-status/{job_id}"


# ------------------------------------------------------------------ export


def parse_export(request: Request, level: str, patient_id: str | None) -> ExportRequest:
    params = request.query_params
    output_format = params.get("_outputFormat")
    if output_format is not None and output_format not in NDJSON_FORMATS:
        raise invalid(
            f"_outputFormat {output_format!r} is not supported; use application/fhir+ndjson",
            expression="_outputFormat",
            rule="bulk-output-format",
        )
    types = tuple(t.strip() for v in params.getlist("_type") for t in v.split(",") if t.strip())
    allowed = set(resource_types()) if level == "system" else set(compartment_types())
    for res_type in types:
        if res_type not in allowed:
            scope = "a FHIR R4 resource type" if level == "system" else "in the Patient compartment"
            raise invalid(
                f"_type {res_type!r} is not {scope}", expression="_type", rule="bulk-type"
            )
    since = None
    if params.get("_since"):
        since = parse_instant(params["_since"])
    return ExportRequest(level, types, since, patient_id)


def parse_instant(value: str) -> datetime:
    """A FHIR instant (with time zone), as naive UTC like the store's timestamps."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid(
            f"_since {value!r} is not a FHIR instant like 2024-01-31T08:00:00Z",
            expression="_since",
            rule="bulk-since-instant",
        ) from exc
    if moment.tzinfo is None:
        raise invalid(
            f"_since {value!r} needs a time zone (e.g. Z or +08:00)",
            expression="_since",
            rule="bulk-since-instant",
        )
    return moment.astimezone(UTC).replace(tzinfo=None)


def kick_off_export(
    request: Request, runtime: Runtime, ctx: RequestContext, export: ExportRequest
) -> Response:
    require_async(request)
    if export.patient_id is not None:
        with runtime.transaction(ctx) as service:
            service.store.read("Patient", export.patient_id, audit=False)  # 404/410 early
    job = jobs.create_job(runtime, "export", {"url": str(request.url), "level": export.level})
    with runtime.transaction(ctx) as service:
        scope = f"Patient/{export.patient_id}" if export.patient_id else export.level
        patients = (f"Patient/{export.patient_id}",) if export.patient_id else ()
        service.store.audit(Access("export", (), patients, query=f"$export {scope} job {job.id}"))

    def work() -> dict[str, Any]:
        def before(res_type: str, position: int, total: int) -> None:
            if jobs.is_cancelled(runtime, job.id):
                raise jobs.JobCancelled()
            jobs.set_progress(runtime, job.id, f"exporting {res_type} ({position + 1}/{total})")

        out_dir = jobs.job_dir("export", job.id)
        files = run_export(runtime, export, out_dir, job.transaction_time, before_type=before)
        base = f"{runtime.base_url}/$export-files/{job.id}"
        return {
            "transactionTime": format_instant(job.transaction_time),
            "request": str(request.url),
            "requiresAccessToken": False,
            "output": [
                {"type": f.res_type, "url": f"{base}/{f.path.name}", "count": f.count}
                for f in files
            ],
            "error": [],
        }

    jobs.start(runtime, job, work)
    return accepted(runtime, job.id)


def accepted(runtime: Runtime, job_id: str) -> Response:
    outcome = operation_outcome(
        [
            Issue(
                "the job was accepted; poll the Content-Location URL",
                severity="information",
                code="informational",
            )
        ]
    )
    return fhir_response(outcome, 202, {"Content-Location": status_url(runtime, job_id)})


@router.get("/$export")
def system_export(request: Request, runtime: RuntimeDep, ctx: ContextDep) -> Response:
    return kick_off_export(request, runtime, ctx, parse_export(request, "system", None))


@router.get("/Patient/$export")
def patient_export(request: Request, runtime: RuntimeDep, ctx: ContextDep) -> Response:
    return kick_off_export(request, runtime, ctx, parse_export(request, "patient", None))


@router.get("/Patient/{res_id}/$export")
def instance_export(
    res_id: str, request: Request, runtime: RuntimeDep, ctx: ContextDep
) -> Response:
    return kick_off_export(request, runtime, ctx, parse_export(request, "instance", res_id))


# ------------------------------------------------------------------ import


def resolve_input(url: str, data_dir: Path) -> Path:
    """An input URL as a file inside the data directory (the only place imports read from)."""
    root = data_dir.resolve()
    if url.startswith("file://"):
        path = Path(unquote(urlsplit(url).path))
    elif "://" in url:
        raise invalid(
            f"input url {url!r}: only file:// URLs and paths under the data directory are "
            "accepted; yilian never fetches from the network",
            expression="Parameters.parameter.part.valueUrl",
            rule="import-input-url",
        )
    else:
        path = root / url
    path = path.resolve()
    if not path.is_relative_to(root):
        raise invalid(
            f"input url {url!r} is outside the data directory {root}",
            expression="Parameters.parameter.part.valueUrl",
            rule="import-input-url",
        )
    if not path.is_file():
        raise invalid(
            f"input url {url!r}: no such file {path}",
            expression="Parameters.parameter.part.valueUrl",
            rule="import-input-url",
        )
    return path


def _value(part: dict[str, Any]) -> Any:
    return next((v for k, v in part.items() if k.startswith("value")), None)


def parse_import(body: Any, data_dir: Path) -> list[tuple[Path, str | None]]:
    """(file, declared type) of every ``input`` of a ``$import`` Parameters resource."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise invalid(
            "$import expects a Parameters resource",
            expression="resourceType",
            rule="import-parameters",
        )
    params = [p for p in body.get("parameter", []) if isinstance(p, dict)]
    formats = [_value(p) for p in params if p.get("name") == "inputFormat"]
    if formats and formats[0] not in NDJSON_FORMATS:
        raise invalid(
            f"inputFormat {formats[0]!r} is not supported; use application/fhir+ndjson",
            expression="Parameters.parameter[inputFormat]",
            rule="import-format",
        )
    inputs: list[tuple[Path, str | None]] = []
    for param in params:
        if param.get("name") != "input":
            continue
        parts = {p.get("name"): _value(p) for p in param.get("part", []) if isinstance(p, dict)}
        if not isinstance(parts.get("url"), str):
            raise invalid(
                "each input needs a url part",
                rule="import-input-url",
                expression="Parameters.parameter[input].part[url]",
            )
        declared = parts.get("type")
        inputs.append((resolve_input(parts["url"], data_dir), declared if declared else None))
    if not inputs:
        raise invalid(
            "$import needs at least one input parameter",
            rule="import-input",
            expression="Parameters.parameter[input]",
        )
    return inputs


def import_workers() -> int:
    """Worker processes for API imports (``YILIAN_IMPORT_WORKERS``, default 2 = the cores here)."""
    return int(os.environ.get("YILIAN_IMPORT_WORKERS", "2"))


@router.post("/$import")
async def kick_off_import(request: Request, runtime: RuntimeDep, ctx: ContextDep) -> Response:
    require_async(request)
    inputs = parse_import(await read_json(request), load_settings().data_dir)
    job = jobs.create_job(
        runtime, "import", {"url": str(request.url), "input": [str(p) for p, _t in inputs]}
    )
    options = LoadOptions(workers=import_workers(), expected_types={p: t for p, t in inputs if t})

    def work() -> dict[str, Any]:
        def progress(report: LoadReport) -> None:
            jobs.set_progress(
                runtime,
                job.id,
                f"{report.loaded} loaded, {report.rejected} "
                f"rejected, {report.bytes_done}/{report.bytes_total} bytes",
            )

        loader = Loader(
            runtime,
            ctx,
            options,
            on_progress=progress,
            job_id=job.id,
            cancelled=lambda: jobs.is_cancelled(runtime, job.id),
        )
        try:
            report = loader.load([p for p, _t in inputs])
        except LoadAborted as exc:
            if jobs.is_cancelled(runtime, job.id):
                raise jobs.JobCancelled() from exc
            raise
        return import_result(runtime, job, str(request.url), report)

    jobs.start(runtime, job, work)
    return accepted(runtime, job.id)


def import_result(
    runtime: Runtime, job: BulkJobRow, url: str, report: LoadReport
) -> dict[str, Any]:
    """The completed import, shaped like an export manifest; errors as OperationOutcome NDJSON."""
    errors: list[dict[str, Any]] = []
    if report.errors:
        out_dir = jobs.job_dir("import", job.id)
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "OperationOutcome.ndjson").open("wb") as out:
            for error in report.errors:
                outcome = operation_outcome([Issue(str(error), code="invalid")])
                out.write(dumps(outcome) + b"\n")
        errors.append(
            {
                "type": "OperationOutcome",
                "count": len(report.errors),
                "url": f"{runtime.base_url}/$import-files/{job.id}/OperationOutcome.ndjson",
            }
        )
    return {
        "transactionTime": format_instant(job.transaction_time),
        "request": url,
        "requiresAccessToken": False,
        "output": [{"type": t, "count": n} for t, n in sorted(report.by_type.items())],
        "error": errors,
        "loaded": report.loaded,
        "rejected": report.rejected,
        "skippedFiles": report.skipped_files,
    }


# ------------------------------------------------------------- status, files


def _job_or_404(runtime: Runtime, job_id: str) -> BulkJobRow:
    job = jobs.get_job(runtime, job_id) if JOB_ID.fullmatch(job_id) else None
    if job is None or job.status == jobs.CANCELLED:
        raise not_found(
            f"bulk job {job_id} is not known (finished jobs deleted via DELETE are gone)"
        )
    return job


@router.get("/$bulk-status/{job_id}")
def job_status(job_id: str, runtime: RuntimeDep) -> Response:
    job = _job_or_404(runtime, job_id)
    if job.status in (jobs.QUEUED, jobs.RUNNING):
        return Response(status_code=202, headers={"X-Progress": job.progress, "Retry-After": "1"})
    if job.status == jobs.FAILED:
        issue = Issue(f"the {job.kind} job failed: {job.error}", code="exception")
        return fhir_response(operation_outcome([issue]), 500)
    return Response(dumps(job.result), status_code=200, media_type="application/json")


@router.delete("/$bulk-status/{job_id}")
def delete_job(job_id: str, runtime: RuntimeDep) -> Response:
    _job_or_404(runtime, job_id)
    jobs.cancel(runtime, job_id)
    return Response(status_code=202)


def _job_file(runtime: Runtime, kind: str, job_id: str, name: str) -> FileResponse:
    job = _job_or_404(runtime, job_id)
    if job.kind != kind or job.status != jobs.COMPLETED or not FILE_NAME.fullmatch(name):
        raise not_found(f"{kind} file {job_id}/{name} is not known")
    path = jobs.job_dir(kind, job_id) / name
    if not path.is_file():
        raise not_found(f"{kind} file {job_id}/{name} is not known")
    return FileResponse(path, media_type="application/fhir+ndjson")


@router.get("/$export-files/{job_id}/{name}")
def export_file(job_id: str, name: str, runtime: RuntimeDep) -> FileResponse:
    return _job_file(runtime, "export", job_id, name)


@router.get("/$import-files/{job_id}/{name}")
def import_file(job_id: str, name: str, runtime: RuntimeDep) -> FileResponse:
    return _job_file(runtime, "import", job_id, name)
