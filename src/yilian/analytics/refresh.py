"""Materialise the core views (views/*.json) from a Bulk Data NDJSON export to Parquet.

Full mode rebuilds every view. Incremental mode keeps a watermark (the largest
``meta.lastUpdated`` seen, stored in ``_refresh_state.json``), runs the views only over
resources updated after it, and supersedes those resources' rows with a delta part
(viewstore.py: new rows plus a tombstone list of the changed ids, merged on read) instead of
rewriting the Parquet files (every core view carries the resource ``id``; FHIR Bulk Data
export writes the current version of each resource,
https://hl7.org/fhir/uv/bulkdata/export.html). The source of an incremental refresh is
normally a ``$export?_since=<watermark>`` export, so only changed resources are read.

Deletions: an NDJSON export carries no tombstones. Bulk Data v2 lists resources deleted since
``_since`` in the manifest's ``deleted`` files: NDJSON of Bundles whose entries have
``request.method = DELETE`` and ``request.url = Type/id``
(https://hl7.org/fhir/uv/bulkdata/STU2/export.html#response---complete-status). Pass those
files as ``deleted``; their resources' rows are dropped from every view over that type. Without
them, deleted resources stay in the views until the next full refresh (which rebuilds from the
export and so drops them).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from yilian.analytics import viewstore
from yilian.analytics.catalog import DERIVED, Derived, core_views
from yilian.analytics.compiler import CompiledView, compile_view
from yilian.analytics.engines import Engine
from yilian.analytics.viewdef import validate_view

__all__ = ["RefreshSummary", "core_views", "deleted_keys", "files_by_type", "refresh"]

STATE_FILE = viewstore.STATE_FILE


@dataclass(frozen=True)
class RefreshSummary:
    mode: str
    resources: int
    rows: Mapping[str, int]
    watermark: str | None


def deleted_keys(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Resource ids by type from Bulk Data ``deleted`` files (Bundles of DELETE entries)."""
    out: dict[str, set[str]] = {}
    for path in paths:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                bundle = json.loads(line)
                for i, entry in enumerate(bundle.get("entry", [])):
                    request = entry.get("request", {})
                    parts = str(request.get("url", "")).rstrip("/").split("/")
                    if request.get("method") != "DELETE" or len(parts) < 2:
                        raise ValueError(
                            f"{path}:{number}: Bundle.entry[{i}].request must be DELETE Type/id "
                            "(Bulk Data deleted file)"
                        )
                    out.setdefault(parts[-2], set()).add(parts[-1])
    return out


def _first_type(path: Path) -> str | None:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                return str(json.loads(line).get("resourceType"))
    return None


def files_by_type(files: Sequence[Path], types: set[str]) -> dict[str, list[Path]]:
    """The export files holding resources the views read, by resource type.

    Bulk Data export writes each file with resources of one type only ("Each file item SHALL
    contain resources of only one type", https://hl7.org/fhir/uv/bulkdata/export.html), so the
    first line names the type of the whole file; files of other types (Claim, EOB, …) are
    skipped instead of being parsed for nothing.
    """
    out: dict[str, list[Path]] = {}
    for path in files:
        rtype = _first_type(path)
        if rtype in types:
            out.setdefault(str(rtype), []).append(path)
    return out


def _derive(engine: Engine, derived: Derived, out: Path, db: viewstore.ViewDb) -> int:
    """Recompute a derived table from its input views (small: one row per referral or
    contract), with the refresh's engine dialect so its SQL runs unchanged on both. On DuckDB
    it runs inside the DuckDB copy, over the current rows kept there; another engine gets the
    inputs from the copy as Arrow."""
    if engine.dialect == "duckdb":
        return db.derive(derived.name, derived.sql)
    for name in derived.inputs:
        engine.register(name, db.table(name))
    table = engine.query(derived.sql)
    viewstore.write_base(out, derived.name, table)
    db.replace(derived.name)
    return int(table.num_rows)


def _changed_ids(engine: Engine, table: str, drop: pa.Array) -> pa.Array:
    """Ids whose old rows an incremental refresh supersedes: every changed resource of the
    loaded type (also one whose new version yields no row, e.g. no longer a referral) and the
    deleted ones."""
    ids = engine.query(f"SELECT DISTINCT id FROM {table}")["id"].combine_chunks()
    return pa.concat_arrays([ids.cast(pa.string()), drop])


def _without(engine: Engine, sql: str, drop: pa.Array) -> str:
    """``sql`` minus the rows of the ``drop`` ids (deleted resources)."""
    if not len(drop):
        return sql
    engine.register("_yilian_drop", pa.table({"id": drop}))
    return f"SELECT * FROM ({sql}) _v WHERE _v.id NOT IN (SELECT id FROM _yilian_drop)"


def _materialise(
    engine: Engine,
    compiled: CompiledView,
    out: Path,
    name: str,
    merge: bool,
    number: int,
    drop: pa.Array,
    changed: pa.Array,
) -> bool:
    """Run one compiled view and store it: a new base file (written by the engine itself), or
    a delta part when merging. Returns True when the view got a new base file."""
    if not (merge and viewstore.base_file(out, name).exists()):
        viewstore.clear_view_deltas(out, name)
        engine.write_parquet(_without(engine, compiled.sql, drop), viewstore.base_file(out, name))
        return True
    fresh = engine.query(_without(engine, compiled.sql, drop))
    schema = pq.read_schema(viewstore.base_file(out, name))
    viewstore.append_delta(out, name, number, fresh.cast(schema), changed)
    if len(viewstore.deltas(out, name)) >= viewstore.COMPACT_AFTER:
        viewstore.compact(out, name)
        return True
    return False


COMPILED_FILE = "_compiled.json"
# The modules whose code decides a view's SQL: a change to any of them invalidates the cache.
_COMPILER_MODULES = (
    "yilian.analytics.compiler",
    "yilian.analytics.dialects",
    "yilian.analytics.fhirpath",
    "yilian.analytics.r4paths",
    "yilian.analytics.viewdef",
    "yilian.fhir.validation.schema",
)


def _compiler_fingerprint() -> str:
    """A digest of the compiler's source files and SQLGlot's version."""
    import importlib.metadata
    import importlib.util

    digest = hashlib.sha256(importlib.metadata.version("sqlglot").encode())
    for module in _COMPILER_MODULES:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec is not None else None
        digest.update(Path(origin).read_bytes() if origin else module.encode())
    return digest.hexdigest()


def compiled_views(dialect: str, table: str, out: Path) -> dict[str, CompiledView]:
    """The core views compiled for ``dialect`` over ``table``, cached in ``OUT/_compiled.json``.

    Compiling the views costs ≈ 1 s of CPU (SQLGlot, the R4 structure tables), paid by every
    refresh; an incremental one after 1 % of changes is a few seconds in all. The cache key is
    the view JSON, the dialect, the table and the compiler's fingerprint (its source files and
    SQLGlot's version), so an edited view or compiler never reuses stale SQL. The views are
    still validated on every run (cheap).
    """
    views = core_views()
    path = out / COMPILED_FILE
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, json.JSONDecodeError):
        cache = {}
    fingerprint = _compiler_fingerprint()
    compiled: dict[str, CompiledView] = {}
    dirty = False
    for name, view in views.items():
        text = json.dumps([fingerprint, dialect, table, view], sort_keys=True)
        key = hashlib.sha256(text.encode()).hexdigest()
        entry = f"{dialect}:{table}:{name}"  # full and incremental runs read other tables
        hit = cache.get(entry)
        if isinstance(hit, dict) and hit.get("key") == key:
            columns = tuple((str(n), str(k), bool(c)) for n, k, c in hit["columns"])
            compiled[name] = CompiledView(
                str(hit["sql"]), columns, validate_view(view), bool(hit["reads_number_text"])
            )
            continue
        fresh = compile_view(view, dialect, table=table)
        compiled[name] = fresh
        cache[entry] = {
            "key": key,
            "sql": fresh.sql,
            "columns": [list(c) for c in fresh.columns],
            "reads_number_text": fresh.reads_number_text,
        }
        dirty = True
    if dirty:
        path.write_text(json.dumps(cache, indent=1), encoding="utf-8")
    return compiled


# FHIR instant (http://hl7.org/fhir/R4/datatypes.html#instant); the watermark is inlined in SQL.
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _load_state(out: Path) -> dict[str, Any] | None:
    """The previous refresh's state, or None when ``out`` holds no refresh yet."""
    path = out / STATE_FILE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc}); run a full refresh") from exc
    mark = state.get("watermark") if isinstance(state, dict) else "?"
    if mark is not None and not (isinstance(mark, str) and _INSTANT.match(mark)):
        raise ValueError(f"{path}: watermark must be a FHIR instant, got {mark!r}")
    number = state.get("refresh", 0)
    if not (isinstance(number, int) and number >= 0):
        raise ValueError(f"{path}: refresh must be a non-negative integer, got {number!r}")
    return dict(state)


def refresh(
    engine: Engine,
    source: Path,
    out: Path,
    *,
    incremental: bool = False,
    deleted: Sequence[Path] = (),
    on_view: Callable[[str], None] | None = None,
) -> RefreshSummary:
    """Build ``out/<view>.parquet`` for every core view from ``source/*.ndjson``.

    ``incremental``: merge into the previous refresh in ``out`` — rows of the resources in
    ``source`` (normally a ``_since`` export) replace their old rows; when the previous refresh
    recorded a watermark, resources with an older ``meta.lastUpdated`` are skipped (resources
    without one always pass: they cannot be shown to be old). Without a previous refresh the
    run is a full one.
    ``deleted``: Bulk Data ``deleted`` files whose resources are removed from the views.
    """
    files = sorted(source.glob("*.ndjson"))
    if not files and not deleted:
        raise FileNotFoundError(f"no *.ndjson files in {source}")
    out.mkdir(parents=True, exist_ok=True)
    state = _load_state(out)
    merge = incremental and state is not None
    watermark = state.get("watermark") if merge and state is not None else None
    number = int(state.get("refresh", 0)) + 1 if merge and state is not None else 0
    previous = state.get("generation") if merge and state is not None else None
    if not merge:
        viewstore.clear_deltas(out)
    # Only resources changed since the last refresh go through the views.
    table_name = "fhir_changed" if watermark is not None else "fhir_resources"
    views = compiled_views(engine.dialect, table_name, out)
    types = sorted({c.view.resource for c in views.values()})
    by_type = files_by_type(files, set(types))
    gone = deleted_keys(deleted)
    loaded = 0
    marks: list[str] = []
    rebuilt: set[str] = set()
    # One resource type at a time: the engine holds one type's resources (bounded memory at
    # city scale: the largest type, not the whole export), and each view reads only its type.
    for rtype in types:
        own = {n: c for n, c in views.items() if c.view.resource == rtype}
        paths = by_type.get(rtype, [])
        # The decimal-text pass costs a regex over every line; skip it when no view needs it.
        keep = any(c.reads_number_text for c in own.values())
        if paths:
            loaded += engine.load_ndjson(paths, keep_decimal_text=keep)
        else:
            engine.load_resources([])
        mark = engine.query("SELECT max(last_updated) AS m FROM fhir_resources")["m"][0].as_py()
        if mark is not None:
            marks.append(str(mark))
        if watermark is not None:
            engine.execute(
                "CREATE OR REPLACE TEMP VIEW fhir_changed AS SELECT * FROM fhir_resources "
                f"WHERE last_updated IS NULL OR last_updated > '{watermark}'"
            )
        drop = pa.array(sorted(gone.get(rtype, set())), pa.string())
        changed = _changed_ids(engine, table_name, drop) if merge else drop
        for name, compiled in own.items():
            if on_view is not None:
                on_view(name)
            if _materialise(engine, compiled, out, name, merge, number, drop, changed):
                rebuilt.add(name)
    engine.load_resources([])  # free the last type's resources
    # The DuckDB copy: a new file after a full refresh, else the new parts folded in.
    db = viewstore.ViewDb(out, previous)
    try:
        for name in views:
            if name in rebuilt:
                db.replace(name)
            else:
                db.fold(name, number)
        rows = {name: db.count(name) for name in views}
        for derived in DERIVED:
            if on_view is not None:
                on_view(derived.name)
            rows[derived.name] = _derive(engine, derived, out, db)
        generation = uuid.uuid4().hex
        db.commit(generation)
    except BaseException:
        db.abandon()
        raise
    new_mark = max(marks) if marks else None
    if new_mark is None or (watermark is not None and new_mark < watermark):
        new_mark = watermark  # nothing newer arrived: keep the old watermark
    state_out = {"watermark": new_mark, "refresh": number, "generation": generation}
    (out / STATE_FILE).write_text(json.dumps(state_out), encoding="utf-8")
    return RefreshSummary("incremental" if merge else "full", loaded, rows, new_mark)
