"""Bulk loading on SQLite and PostgreSQL: NDJSON, Bundles, resume, bad lines, versions."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from tests.fhir.bulk.conftest import SYNTHEA, synthea_resources, write_ndjson
from yilian.audit.models import AuditEntryRow
from yilian.fhir.bulk.importer import LoadAborted, Loader, LoadOptions
from yilian.fhir.bulk.sources import find_inputs
from yilian.fhir.models import ReferenceIndex, ResourceRow, ResourceVersionRow, TokenIndex
from yilian.fhir.runtime import RequestContext, Runtime

INLINE = LoadOptions(workers=0, batch_size=50)


NOT_AUDIT = ResourceRow.res_type != "AuditEvent"  # each audit entry is also an AuditEvent
NOT_AUDIT_VERSION = ResourceVersionRow.res_type != "AuditEvent"


def count(engine: Engine, model: type, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def loader(runtime: Runtime, options: LoadOptions = INLINE, **kw: object) -> Loader:
    return Loader(runtime, RequestContext.system(), options, **kw)  # type: ignore[arg-type]


def test_ndjson_loads_with_ids_indexes_history_and_audit(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    resources = synthea_resources(0)
    path = write_ndjson(tmp_path / "a.ndjson", resources)
    report = loader(runtime).load([path])
    assert report.loaded == len(resources) and report.rejected == 0
    assert count(engine, ResourceRow, NOT_AUDIT) == len(resources)
    assert count(engine, ResourceVersionRow, NOT_AUDIT_VERSION) == len(resources)
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    with engine.connect() as conn:
        stored = conn.execute(
            select(ResourceRow.content).where(ResourceRow.res_id == patient["id"])
        ).scalar_one()
    assert stored["meta"]["versionId"] == "1" and stored["name"] == patient["name"]
    # Observations reference their patient, so the reference index knows them.
    observations = sum(1 for r in resources if r["resourceType"] == "Observation")
    assert (
        count(
            engine,
            ReferenceIndex,
            ReferenceIndex.res_type == "Observation",
            ReferenceIndex.param == "patient",
            ReferenceIndex.target_id == patient["id"],
        )
        == observations
    )
    assert count(engine, TokenIndex, TokenIndex.res_type == "Observation") > 0
    batches = -(-len(resources) // INLINE.batch_size)
    assert count(engine, AuditEntryRow, AuditEntryRow.event == "import") == batches


def test_bad_lines_are_reported_with_file_and_line(runtime: Runtime, tmp_path: Path) -> None:
    good = {"resourceType": "Patient", "id": "p1", "gender": "female"}
    path = write_ndjson(
        tmp_path / "b.ndjson",
        [good],
        ("{not json", "", json.dumps({"resourceType": "Patient", "gender": "girl"})),
    )
    report = loader(runtime).load([path])
    assert report.loaded == 1 and report.rejected == 2
    first, second = report.errors
    assert (first.line, second.line) == (2, 4)
    assert str(first).startswith(f"{path}:2: ") and "json-syntax" in first.message
    assert "Patient.gender" in second.message and "required-binding" in second.message


def test_strict_stops_at_the_first_bad_line(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    path = write_ndjson(
        tmp_path / "c.ndjson", [{"resourceType": "Patient", "id": "ok"}], ("[1, 2]",)
    )
    with pytest.raises(LoadAborted, match=r"c.ndjson:2"):
        loader(runtime, LoadOptions(workers=0, strict=True)).load([path])
    assert (
        count(engine, ResourceRow, NOT_AUDIT) == 0
    )  # the batch holding the bad line was not written


def test_known_id_becomes_a_new_version(runtime: Runtime, engine: Engine, tmp_path: Path) -> None:
    first = write_ndjson(
        tmp_path / "1.ndjson", [{"resourceType": "Patient", "id": "v", "gender": "male"}]
    )
    second = write_ndjson(
        tmp_path / "2.ndjson.gz.src",
        [
            {"resourceType": "Patient", "id": "v", "gender": "female"},
            {"resourceType": "Patient", "id": "v", "gender": "other"},
            {"resourceType": "Patient", "gender": "unknown"},
        ],
    )
    gz = tmp_path / "2.ndjson.gz"
    gz.write_bytes(gzip.compress(second.read_bytes()))
    loader(runtime).load([first])
    report = loader(runtime).load([gz])
    assert report.loaded == 3 and report.updated == 2
    with engine.connect() as conn:
        row = conn.execute(select(ResourceRow).where(ResourceRow.res_id == "v")).one()
    assert row.version_id == 3 and row.content["gender"] == "other"
    assert row.content["meta"]["versionId"] == "3"
    assert count(engine, ResourceVersionRow, ResourceVersionRow.res_id == "v") == 3
    assert count(engine, TokenIndex, TokenIndex.param == "gender", TokenIndex.code == "other") == 1
    assert count(engine, TokenIndex, TokenIndex.param == "gender", TokenIndex.code == "male") == 0
    assert count(engine, ResourceRow, NOT_AUDIT) == 2  # the id-less one got a new id


def test_interrupted_load_resumes_without_duplicates(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    resources = (synthea_resources(0) + synthea_resources(1))[:230]
    path = write_ndjson(tmp_path / "r.ndjson", resources)

    class Crash(Exception):
        pass

    def crash_after_two(_path: Path, _line: int) -> None:
        crash_after_two.calls += 1  # type: ignore[attr-defined]
        if crash_after_two.calls == 2:  # type: ignore[attr-defined]
            raise Crash()

    crash_after_two.calls = 0  # type: ignore[attr-defined]
    with pytest.raises(Crash):
        loader(runtime, on_batch=crash_after_two).load([path])
    assert count(engine, ResourceRow, NOT_AUDIT) == 100  # two committed batches of 50
    report = loader(runtime).load([path])
    assert report.loaded == 130
    assert count(engine, ResourceRow, NOT_AUDIT) == len(resources)
    assert count(engine, ResourceVersionRow, NOT_AUDIT_VERSION) == len(
        resources
    )  # nothing loaded twice
    again = loader(runtime).load([path])
    assert again.loaded == 0 and again.skipped_files == [str(path)]


def test_worker_processes_prepare_the_same_rows(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    resources = synthea_resources(2)
    path = write_ndjson(tmp_path / "w.ndjson", resources)
    report = loader(runtime, LoadOptions(workers=2, batch_size=100)).load([path])
    assert report.loaded == len(resources)
    assert count(engine, ResourceRow, NOT_AUDIT) == len(resources)


def test_bundle_directory_transaction_and_collection(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    shutil.copy(SYNTHEA / "synthea-r4-03.json", folder)
    transaction = json.loads((SYNTHEA / "synthea-r4-03.json").read_text())
    collection = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in synthea_resources(4)[:40]],
    }
    (folder / "collection.json").write_text(json.dumps(collection))
    report = loader(runtime).load([folder])
    assert report.rejected == 0
    assert report.loaded == len(transaction["entry"]) + 40
    assert count(engine, ResourceRow, NOT_AUDIT) == report.loaded
    assert loader(runtime).load([folder]).skipped_files  # both files done


def test_failed_transaction_bundle_is_reported_and_the_load_goes_on(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    broken = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "gender": "girl"},
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }
    (tmp_path / "a.json").write_text(json.dumps(broken))
    write_ndjson(tmp_path / "b.ndjson", [{"resourceType": "Patient", "id": "fine"}])
    report = loader(runtime).load([tmp_path])
    assert report.loaded == 1 and report.rejected == 1
    assert "gender" in report.errors[0].message
    assert count(engine, ResourceRow, ResourceRow.res_type == "Patient") == 1


def test_directory_walk_skips_synth_sidecars_but_not_named_files(tmp_path: Path) -> None:
    (tmp_path / "Patient.ndjson").write_text("{}\n", encoding="utf-8")
    (tmp_path / "demo-users.json").write_text("[]", encoding="utf-8")
    (tmp_path / "mpi-truth.csv").write_text("a,b\n", encoding="utf-8")
    assert [p.name for p in find_inputs([tmp_path])] == ["Patient.ndjson"]
    named = find_inputs([tmp_path / "demo-users.json"])
    assert [p.name for p in named] == ["demo-users.json"]


def _has_statistics(engine: Engine) -> bool:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            tuples = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'fhir_resource'")
            ).scalar_one()
            return bool(tuples > 0)
        stat = conn.execute(
            text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        ).scalar_one()
        if not stat:
            return False
        rows = conn.execute(
            text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'fhir_resource'")
        ).scalar_one()
        return bool(rows)


def _forget_statistics(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE fhir_resource CASCADE"))  # reltuples back to unknown
        elif conn.execute(
            text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        ).scalar_one():
            conn.execute(text("DELETE FROM sqlite_stat1"))


def test_a_load_leaves_planner_statistics(runtime: Runtime, engine: Engine, tmp_path: Path) -> None:
    _forget_statistics(engine)
    assert not _has_statistics(engine)
    path = write_ndjson(tmp_path / "a.ndjson", synthea_resources(0))
    assert loader(runtime).load([path]).loaded > 0
    assert _has_statistics(engine)
