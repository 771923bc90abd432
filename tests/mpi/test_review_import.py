"""The batch job's review CSV fills the queue (real dedupe output, both databases)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine

from tests.mpi.districts import write_patients
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.mpi.dedupe import run_dedupe
from yilian.mpi.review import count_items, list_items
from yilian.mpi.review.importer import ReviewImportError, import_review_csv

CTX = RequestContext.system("system/test")


@pytest.fixture(scope="module")
def dedupe_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = write_patients(tmp_path_factory.mktemp("review-src"), scale=0.002, seed=5, rate=0.4)
    out = tmp_path_factory.mktemp("review-out")
    report = run_dedupe(source, out)
    assert report.review_pairs > 0
    (out / "source").symlink_to(source)
    return out


def _load_patients(engine: Engine, path: Path) -> None:
    # The generator writes legacy 15-digit resident IDs on purpose (issue #6); loading them
    # is the loader's concern, not the queue's.
    with Runtime(engine, "http://testserver/fhir", validate=False).transaction(CTX) as service:
        for line in path.read_bytes().splitlines():
            patient = orjson.loads(line)
            service.store.update("Patient", patient["id"], patient)


def test_import_fills_the_queue_once(engine: Engine, dedupe_out: Path) -> None:
    runtime = Runtime(engine, "http://testserver/fhir")
    _load_patients(engine, dedupe_out / "source" / "Patient.ndjson")
    csv_path = dedupe_out / "mpi-review.csv"
    pairs = len(csv_path.read_text(encoding="utf-8").splitlines()) - 1
    with runtime.transaction(CTX) as service:
        first = import_review_csv(service.store, csv_path)
    assert (first.proposed, first.missing) == (pairs, 0)
    with runtime.transaction(CTX) as service:
        again = import_review_csv(service.store, csv_path)
        assert again.proposed == pairs
        assert count_items(service.session) == pairs
        top = list_items(service.session, limit=1)[0]
    assert top.source == "batch"
    names = [c["name"] for c in top.comparisons]
    assert names[:2] == ["surname", "given"]
    assert all(isinstance(c["weight"], float) for c in top.comparisons)
    levels = json.loads((dedupe_out / "mpi-report.json").read_text(encoding="utf-8"))
    surname = levels["parameters"]["comparisons"][0]["levels"]
    assert top.comparisons[0]["weight"] == surname[top.comparisons[0]["level"]]["weight_bits"]


def test_pairs_of_unknown_patients_are_skipped(engine: Engine, dedupe_out: Path) -> None:
    runtime = Runtime(engine, "http://testserver/fhir")
    with runtime.transaction(CTX) as service:
        result = import_review_csv(service.store, dedupe_out / "mpi-review.csv")
    assert result.proposed == 0 and result.missing > 0


def test_bad_files_name_the_rule(engine: Engine, dedupe_out: Path, tmp_path: Path) -> None:
    runtime = Runtime(engine, "http://testserver/fhir")
    lonely = tmp_path / "mpi-review.csv"
    lonely.write_text((dedupe_out / "mpi-review.csv").read_text(encoding="utf-8"), "utf-8")
    bad_header = tmp_path / "other.csv"
    bad_header.write_text("a,b\n1,2\n", encoding="utf-8")
    report = dedupe_out / "mpi-report.json"
    for path, kwargs, rule in (
        (lonely, {}, "review-report"),
        (bad_header, {"report": report}, "review-csv-header"),
    ):
        with pytest.raises(ReviewImportError, match=rule), runtime.transaction(CTX) as service:
            import_review_csv(service.store, path, **kwargs)  # type: ignore[arg-type]
