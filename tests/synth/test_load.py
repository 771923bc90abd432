"""A tiny district loads through the bulk loader on SQLite and PostgreSQL with nothing rejected."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import Engine, func, select

from tests.synth.conftest import SMALL, generate
from yilian.fhir.bulk.importer import Loader, LoadOptions
from yilian.fhir.models import ReferenceIndex, ResourceRow
from yilian.fhir.runtime import RequestContext, Runtime

TINY = dataclasses.replace(SMALL, scale=0.0002)  # about 140 residents


def test_tiny_district_loads_in_any_file_order(engine: Engine, tmp_path: Path) -> None:
    counts = generate(TINY, tmp_path)
    # Reverse order: Tasks and Patients before the Organizations they point to.
    paths = sorted(tmp_path.glob("*.ndjson"), reverse=True)
    runtime = Runtime(engine, "http://testserver/fhir")
    report = Loader(runtime, RequestContext.system(), LoadOptions(workers=0)).load(paths)
    assert report.rejected == 0, [str(e) for e in report.errors[:5]]
    assert report.loaded == sum(counts.values())
    with engine.connect() as conn:
        stored = dict(
            conn.execute(
                select(ResourceRow.res_type, func.count())
                .where(ResourceRow.res_type != "AuditEvent")
                .group_by(ResourceRow.res_type)
            ).all()
        )
        patient_refs = conn.execute(
            select(func.count())
            .select_from(ReferenceIndex)
            .where(ReferenceIndex.res_type == "Encounter", ReferenceIndex.param == "patient")
        ).scalar_one()
    assert stored == counts
    assert patient_refs == counts["Encounter"]
