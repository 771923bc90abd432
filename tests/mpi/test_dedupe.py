"""The batch job: clustering, golden records, Patient.link output, review queue, the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.mpi.districts import write_patients
from yilian.cli import app
from yilian.mpi.dedupe import clusters, read_patients, run_dedupe
from yilian.mpi.febrl import DataError


@given(
    st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40),
        )
    )
)
def test_clusters_are_connected_components(case: tuple[int, list[tuple[int, int]]]) -> None:
    n, edges = case
    i = np.array([a for a, _ in edges], dtype=np.int64)
    j = np.array([b for _, b in edges], dtype=np.int64)
    label = clusters(n, i, j)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        parent[find(a)] = find(b)
    for a in range(n):
        for b in range(n):
            assert (label[a] == label[b]) == (find(a) == find(b))
        assert label[a] == min(x for x in range(n) if find(x) == find(a))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_patients(tmp_path_factory.mktemp("dedupe-src"), scale=0.003, seed=3)


def test_dedupe_links_members_to_a_golden_record(source: Path, tmp_path: Path) -> None:
    report = run_dedupe(source, tmp_path)
    assert report.records == len(read_patients(source / "Patient.ndjson"))
    linked = [
        orjson.loads(line) for line in (tmp_path / "Patient.ndjson").read_bytes().splitlines()
    ]
    assert len(linked) == report.records_in_clusters > 0
    by_id = {p["id"]: p for p in linked}
    for patient in linked:
        targets = [link["other"]["reference"].removeprefix("Patient/") for link in patient["link"]]
        assert targets and all(link["type"] == "seealso" for link in patient["link"])
        for target in targets:  # links go both ways: member -> golden record -> member
            back = [link["other"]["reference"] for link in by_id[target]["link"]]
            assert f"Patient/{patient['id']}" in back
    with (tmp_path / "mpi-review.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == report.review_pairs
    assert all(0.05 <= float(r["match_probability"]) < 0.95 for r in rows)
    assert (tmp_path / "mpi-report.json").is_file()


def test_cli_dedupe_and_bad_input(source: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["mpi", "dedupe", str(source), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "automatic links" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["mpi", "dedupe", str(empty), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "no Patient.ndjson" in result.output
    (empty / "Patient.ndjson").write_text("not json\n", encoding="utf-8")
    with pytest.raises(DataError, match="not FHIR NDJSON"):
        read_patients(empty / "Patient.ndjson")


def test_golden_record_prefers_a_valid_resident_id() -> None:
    from yilian.mpi.chinese import COLUMNS, prepare
    from yilian.mpi.dedupe import golden_records
    from yilian.mpi.records import Records

    rows = [
        {"name": "王丽", "phone": "13900000000", "address": "长宁区长宁路1号"},
        {"name": "王莉", "resident_id": "11010519491231002X"},
        {"name": "李娜", "resident_id": "110105194912310021"},  # fails its check
    ]
    records = Records.from_rows(rows, COLUMNS)
    prepare(records)
    label = np.array([0, 0, 2])
    assert golden_records(records, label) == {0: 1, 2: 2}
