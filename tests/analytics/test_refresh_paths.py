"""Refresh at scale: direct R4 JSON paths, delta parts merged on read, the skipped decimal pass.

Each shortcut is checked against the slow, general path it replaces, on the synthetic
district: the generic collection SQL, a full refresh of the changed export, a compacted view.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from yilian.analytics import viewstore
from yilian.analytics.catalog import core_views
from yilian.analytics.compiler import compile_view
from yilian.analytics.engines import DuckDBEngine
from yilian.analytics.query import open_views
from yilian.analytics.refresh import COMPILED_FILE, compiled_views, refresh
from yilian.fhir import systems
from yilian.synth.generator import DistrictGenerator, SynthConfig

Resource = dict[str, Any]


@pytest.fixture(scope="module")
def district() -> dict[str, list[Resource]]:
    """≈ 280 residents (seed 5), by resource type."""
    config = SynthConfig(scale=0.0004, seed=5, end_date=dt.date(2026, 10, 31))
    by_type: dict[str, list[Resource]] = {}
    for resource in DistrictGenerator(config).resources():
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return by_type


def _write(folder: Path, by_type: dict[str, list[Resource]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for rtype, resources in by_type.items():
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in resources)
        (folder / f"{rtype}.ndjson").write_text(lines, encoding="utf-8")
    return folder


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted((tuple(map(repr, r.values())) for r in table.to_pylist()), key=str)


def test_direct_paths_match_the_generic_sql(district: dict[str, list[Resource]]) -> None:
    engine = DuckDBEngine()
    checked = [n for n, v in core_views().items() if v["resource"] in district]
    assert len(checked) >= 9
    for name in checked:
        view = core_views()[name]
        engine.load_resources(district[str(view["resource"])])
        fast = compile_view(view, "duckdb")
        generic = compile_view(view, "duckdb", direct_paths=False)
        assert "_s[" in fast.sql and "_s[" not in generic.sql  # direct paths are in use
        fast_rows = _rows(engine.query(fast.sql))
        assert fast_rows, name
        assert fast_rows == _rows(engine.query(generic.sql)), name
    engine.close()


def test_reads_number_text_only_where_text_is_read() -> None:
    views = core_views()
    assert not compile_view(views["encounters"], "duckdb").reads_number_text
    low = {"name": "low", "path": "value.ofType(Quantity).value.lowBoundary()"}
    boundary = {"resource": "Observation", "select": [{"column": [low]}]}
    assert compile_view(boundary, "duckdb").reads_number_text
    typed = {
        "resource": "Observation",
        "select": [
            {"column": [{"name": "v", "path": "value.ofType(Quantity).value", "type": "decimal"}]}
        ],
    }
    assert not compile_view(typed, "duckdb").reads_number_text


def _changed(district: dict[str, list[Resource]]) -> tuple[dict[str, list[Resource]], list[str]]:
    """Every 7th resource of each type changed (an Encounter cancelled, a referral turned into
    a lab order, a Task completed, a contract ended), every 11th deleted."""
    since: dict[str, list[Resource]] = {}
    deleted: list[str] = []
    stamp = {"lastUpdated": "2026-11-02T00:00:00Z"}
    for rtype, resources in district.items():
        for i, original in enumerate(resources):
            if i % 11 == 5:
                deleted.append(f"{rtype}/{original['id']}")
            elif i % 7 == 3:
                resource = json.loads(json.dumps(original))
                resource["meta"] = stamp
                if rtype == "Encounter":
                    resource["status"] = "cancelled"
                elif rtype == "ServiceRequest":
                    lab = {"system": systems.SNOMED_CT, "code": "108252007"}
                    resource["category"] = [{"coding": [lab]}]
                elif rtype == "Task":
                    resource["status"] = "completed"
                elif rtype == "EpisodeOfCare":
                    resource["status"] = "finished"
                elif rtype == "Patient":
                    resource["gender"] = "unknown"
                since.setdefault(rtype, []).append(resource)
    return since, deleted


def _deleted_file(path: Path, keys: list[str]) -> Path:
    entries = [{"request": {"method": "DELETE", "url": key}} for key in keys]
    path.write_text(json.dumps({"resourceType": "Bundle", "entry": entries}) + "\n")
    return path


def _after(
    district: dict[str, list[Resource]], since: dict[str, list[Resource]], deleted: list[str]
) -> dict[str, list[Resource]]:
    new = {(r["resourceType"], r["id"]): r for rs in since.values() for r in rs}
    gone = set(deleted)
    return {
        rtype: [new.get((rtype, r["id"]), r) for r in resources if f"{rtype}/{r['id']}" not in gone]
        for rtype, resources in district.items()
    }


def test_incremental_refresh_equals_a_full_refresh_of_the_changed_export(
    district: dict[str, list[Resource]], tmp_path: Path
) -> None:
    since, deleted = _changed(district)
    out = tmp_path / "views"
    refresh(DuckDBEngine(), _write(tmp_path / "before", district), out)
    base_rows = {n: viewstore.base_file(out, n).stat().st_mtime_ns for n in core_views()}
    gone = _deleted_file(tmp_path / "deleted.ndjson", deleted)
    summary = refresh(
        DuckDBEngine(), _write(tmp_path / "since", since), out, incremental=True, deleted=[gone]
    )
    assert summary.mode == "incremental"
    # The base files were not rewritten: the changes are delta parts.
    assert all(viewstore.base_file(out, n).stat().st_mtime_ns == t for n, t in base_rows.items())
    assert viewstore.deltas(out, "encounters")

    expected = tmp_path / "expected"
    refresh(DuckDBEngine(), _write(tmp_path / "after", _after(district, since, deleted)), expected)
    for name in viewstore.names(expected):
        merged = viewstore.read_view(out, name)
        assert _rows(merged) == _rows(viewstore.read_view(expected, name)), name
        assert summary.rows[name] == merged.num_rows, name


def test_delta_parts_are_compacted(
    district: dict[str, list[Resource]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(viewstore, "COMPACT_AFTER", 2)
    out = tmp_path / "views"
    refresh(DuckDBEngine(), _write(tmp_path / "before", district), out)
    patients = district["Patient"]
    for round_, gender in enumerate(("other", "unknown"), 1):
        changed = [{**p, "gender": gender} for p in patients[round_ : round_ + 3]]
        source = _write(tmp_path / f"since{round_}", {"Patient": changed})
        refresh(DuckDBEngine(), source, out, incremental=True)
        assert len(viewstore.deltas(out, "patients")) == (1 if round_ == 1 else 0)
    rows = {r["id"]: r["gender"] for r in viewstore.read_view(out, "patients").to_pylist()}
    assert len(rows) == len(patients)
    assert [rows[p["id"]] for p in patients[1:5]] == ["other", "unknown", "unknown", "unknown"]


def test_the_query_api_reads_incremental_changes(
    district: dict[str, list[Resource]], tmp_path: Path
) -> None:
    out = tmp_path / "views"
    refresh(DuckDBEngine(), _write(tmp_path / "before", district), out)
    patient = district["Patient"][0]
    changed = {"Patient": [{**patient, "gender": "other"}]}
    refresh(DuckDBEngine(), _write(tmp_path / "since", changed), out, incremental=True)
    assert viewstore.deltas(out, "patients")
    sql = f"SELECT gender FROM patients WHERE id = '{patient['id']}'"
    assert open_views(out).query(sql).to_pylist() == [{"gender": "other"}]


def _db_rows(out: Path, name: str) -> list[tuple[Any, ...]]:
    """The rows of ``name`` in the DuckDB copy, without its added ``c_date`` columns."""
    columns = ", ".join(f'"{c}"' for c in viewstore.read_view(out, name).column_names)
    con = duckdb.connect(str(out / viewstore.DB_FILE), read_only=True)
    try:
        return _rows(con.sql(f'SELECT {columns} FROM "{name}"').to_arrow_table())
    finally:
        con.close()


def test_the_duckdb_copy_holds_the_merged_rows_after_each_refresh(
    district: dict[str, list[Resource]], tmp_path: Path
) -> None:
    since, deleted = _changed(district)
    out = tmp_path / "views"
    refresh(DuckDBEngine(), _write(tmp_path / "before", district), out)
    for name in viewstore.names(out):
        assert _db_rows(out, name) == _rows(viewstore.read_view(out, name)), name
    gone = _deleted_file(tmp_path / "deleted.ndjson", deleted)
    refresh(
        DuckDBEngine(), _write(tmp_path / "since", since), out, incremental=True, deleted=[gone]
    )
    assert viewstore.deltas(out, "encounters")  # folded from a delta part, not rebuilt
    for name in viewstore.names(out):
        assert _db_rows(out, name) == _rows(viewstore.read_view(out, name)), name


def test_typed_dates_are_the_same_from_the_copy_and_from_parquet(
    district: dict[str, list[Resource]], tmp_path: Path
) -> None:
    out = tmp_path / "views"
    refresh(DuckDBEngine(), _write(tmp_path / "before", district), out)
    sql = "SELECT id, period_start, period_start_date, period_end_date FROM encounters"
    from_copy = open_views(out).query(sql)
    assert from_copy.schema.field("period_start_date").type == pa.date32()
    rows = from_copy.to_pylist()
    assert rows and all(
        r["period_start_date"] == dt.date.fromisoformat(r["period_start"][:10]) for r in rows
    )
    # A copy of another refresh is not read: the Parquet merge gives the same columns.
    state = json.loads((out / viewstore.STATE_FILE).read_text())
    (out / viewstore.STATE_FILE).write_text(json.dumps({**state, "generation": "other"}))
    con = duckdb.connect()
    viewstore.register(con, out)
    attached = con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
    assert ("_yilian_views",) not in attached
    assert _rows(con.sql(sql).to_arrow_table()) == _rows(from_copy)


def test_compiled_sql_is_cached_and_a_stale_entry_recompiled(tmp_path: Path) -> None:
    first = compiled_views("duckdb", "fhir_resources", tmp_path)
    cache = json.loads((tmp_path / COMPILED_FILE).read_text())
    assert set(cache) == {f"duckdb:fhir_resources:{n}" for n in core_views()}
    for name, compiled in first.items():
        assert compiled.sql == compile_view(core_views()[name], "duckdb").sql
    # A cached entry is used only under its key (view JSON, dialect, table, compiler).
    cache["duckdb:fhir_resources:patients"]["sql"] = "SELECT 'stale'"
    (tmp_path / COMPILED_FILE).write_text(json.dumps(cache))
    assert compiled_views("duckdb", "fhir_resources", tmp_path)["patients"].sql == "SELECT 'stale'"
    again = compiled_views("duckdb", "fhir_changed", tmp_path)["patients"].sql
    assert again == compile_view(core_views()["patients"], "duckdb", table="fhir_changed").sql


def test_a_refresh_while_a_reader_holds_the_copy(
    district: dict[str, list[Resource]], tmp_path: Path
) -> None:
    out = tmp_path / "views"
    refresh(DuckDBEngine(), _write(tmp_path / "before", district), out)
    patient = district["Patient"][0]
    sql = f"SELECT gender FROM patients WHERE id = '{patient['id']}'"
    reader = open_views(out)  # attaches views.duckdb read-only: the refresh cannot write it
    before = reader.query(sql).to_pylist()
    changed = {"Patient": [{**patient, "gender": "other"}]}
    refresh(DuckDBEngine(), _write(tmp_path / "since", changed), out, incremental=True)
    assert reader.query(sql).to_pylist() == before  # the open reader keeps its snapshot
    fresh = open_views(out)
    assert fresh.query(sql).to_pylist() == [{"gender": "other"}]
    attached = fresh.query("SELECT database_name FROM duckdb_databases()")["database_name"]
    assert "_yilian_views" in attached.to_pylist()  # read from the new copy, not Parquet
