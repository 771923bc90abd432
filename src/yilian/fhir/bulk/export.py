"""FHIR Bulk Data export: current resources as one NDJSON file per type.

https://hl7.org/fhir/uv/bulkdata/export.html — system level (every type), Patient level (the
Patient compartment of every patient) and one patient; ``_type`` limits the types, ``_since``
keeps resources changed after an instant. Resources changed after ``transactionTime`` (the
kick-off) are left out, so the export is a consistent cut even while writes go on. Types with no
resources get no file (the spec: "no file for a type with no resources").
The compartment is R4 CompartmentDefinition/patient (``yilian.fhir.compartment``): a resource is
in a patient's compartment when one of the listed reference parameters points at the patient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, exists, select

from yilian.db import unit_of_work
from yilian.fhir.compartment import patient_compartment
from yilian.fhir.models import ReferenceIndex, ResourceRow
from yilian.fhir.runtime import Runtime
from yilian.jsonutil import dumps

LEVELS = ("system", "patient", "instance")


@dataclass(frozen=True)
class ExportRequest:
    level: str  # system | patient (all patients) | instance (one patient)
    types: tuple[str, ...] = ()
    since: datetime | None = None  # naive UTC
    patient_id: str | None = None


@dataclass(frozen=True)
class ExportedFile:
    res_type: str
    path: Path
    count: int


def compartment_types() -> list[str]:
    return sorted({"Patient", *(t for t, params in patient_compartment().items() if params)})


def export_types(runtime: Runtime, request: ExportRequest) -> list[str]:
    """The types this export writes, in a stable order."""
    if request.level == "system":
        with unit_of_work(runtime.sessions) as session:
            stored = set(
                session.execute(
                    select(ResourceRow.res_type).where(ResourceRow.deleted.is_(False)).distinct()
                ).scalars()
            )
        candidates = sorted(stored)
    else:
        candidates = compartment_types()
    if request.types:
        return [t for t in candidates if t in set(request.types)]
    return candidates


def type_query(request: ExportRequest, res_type: str, until: datetime) -> Select[Any]:
    query = select(ResourceRow.content).where(
        ResourceRow.res_type == res_type,
        ResourceRow.deleted.is_(False),
        ResourceRow.last_updated <= until,
    )
    if request.since is not None:
        query = query.where(ResourceRow.last_updated > request.since)
    if request.level != "system":
        query = _in_compartment(query, request, res_type)
    return query.order_by(ResourceRow.pk)


def _in_compartment(query: Select[Any], request: ExportRequest, res_type: str) -> Select[Any]:
    if res_type == "Patient":
        if request.patient_id is not None:
            return query.where(ResourceRow.res_id == request.patient_id)
        return query
    link = select(ReferenceIndex.resource_pk).where(
        ReferenceIndex.resource_pk == ResourceRow.pk,
        ReferenceIndex.param.in_(patient_compartment().get(res_type, [])),
        ReferenceIndex.target_type == "Patient",
    )
    if request.patient_id is not None:
        link = link.where(ReferenceIndex.target_id == request.patient_id)
    return query.where(exists(link))


def run_export(
    runtime: Runtime,
    request: ExportRequest,
    out_dir: Path,
    until: datetime,
    *,
    before_type: Callable[[str, int, int], None] | None = None,
) -> list[ExportedFile]:
    """Write ``<out_dir>/<Type>.ndjson`` for every type with resources; stream, never load all.

    ``before_type(type, index, total)`` runs before each type (progress, cancellation).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    types = export_types(runtime, request)
    written: list[ExportedFile] = []
    for position, res_type in enumerate(types):
        if before_type is not None:
            before_type(res_type, position, len(types))
        path = out_dir / f"{res_type}.ndjson"
        count = 0
        with unit_of_work(runtime.sessions) as session, path.open("wb") as out:
            query = type_query(request, res_type, until).execution_options(yield_per=1000)
            for content in session.execute(query).scalars():
                out.write(dumps(content))
                out.write(b"\n")
                count += 1
        if count:
            written.append(ExportedFile(res_type, path, count))
        else:
            path.unlink()
    return written
