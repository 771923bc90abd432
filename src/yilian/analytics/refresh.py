"""Materialise the core views (views/*.json) from a Bulk Data NDJSON export to Parquet.

Full mode rebuilds every view. Incremental mode keeps a watermark (the largest
``meta.lastUpdated`` seen, stored in ``_refresh_state.json``), runs the views only over
resources updated after it, and replaces those resources' rows in the existing Parquet files
(every core view carries the resource ``id``; FHIR Bulk Data export writes the current version
of each resource, https://hl7.org/fhir/uv/bulkdata/export.html). The source of an incremental
refresh is normally a ``$export?_since=<watermark>`` export, so only changed resources are read.

Deletions: an NDJSON export carries no tombstones. Bulk Data v2 lists resources deleted since
``_since`` in the manifest's ``deleted`` files: NDJSON of Bundles whose entries have
``request.method = DELETE`` and ``request.url = Type/id``
(https://hl7.org/fhir/uv/bulkdata/STU2/export.html#response---complete-status). Pass those
files as ``deleted``; their resources' rows are dropped from every view over that type. Without
them, deleted resources stay in the views until the next full refresh (which rebuilds from the
export and so drops them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from yilian.analytics.engines import Engine

STATE_FILE = "_refresh_state.json"


def core_views() -> dict[str, dict[str, Any]]:
    """The shipped ViewDefinitions, by name (documented in docs/analytics.md)."""
    folder = package_files.files("yilian.analytics") / "views"
    out: dict[str, dict[str, Any]] = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            view = json.loads(item.read_text(encoding="utf-8"))
            out[view["name"]] = view
    return out


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


def files_for_views(files: Sequence[Path], types: set[str]) -> list[Path]:
    """The export files holding resources the views read.

    Bulk Data export writes each file with resources of one type only ("Each file item SHALL
    contain resources of only one type", https://hl7.org/fhir/uv/bulkdata/export.html), so the
    first line names the type of the whole file; files of other types (Claim, EOB, …) are
    skipped instead of being parsed for nothing.
    """
    return [p for p in files if _first_type(p) in types]


def _load_state(out: Path) -> dict[str, Any]:
    path = out / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


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

    ``deleted``: Bulk Data ``deleted`` files whose resources are removed from the views.
    """
    files = sorted(source.glob("*.ndjson"))
    if not files:
        raise FileNotFoundError(f"no *.ndjson files in {source}")
    out.mkdir(parents=True, exist_ok=True)
    state = _load_state(out)
    watermark = state.get("watermark") if incremental else None
    views = core_views()
    needed = files_for_views(files, {str(v["resource"]) for v in views.values()})
    loaded = engine.load_ndjson(needed) if needed else engine.load_resources([])
    table_name = "fhir_resources"
    if watermark is not None:
        # Only resources changed since the last refresh go through the views.
        engine.execute(
            "CREATE OR REPLACE TEMP VIEW fhir_changed AS SELECT * FROM fhir_resources "
            f"WHERE last_updated > '{watermark}'"
        )
        table_name = "fhir_changed"
    gone = deleted_keys(deleted)
    rows: dict[str, int] = {}
    for name, view in views.items():
        if on_view is not None:
            on_view(name)
        fresh = engine.run_view(view, table=table_name)
        target = out / f"{name}.parquet"
        drop = pa.array(sorted(gone.get(str(view["resource"]), set())), pa.string())
        table = fresh.filter(pc.invert(pc.is_in(fresh["id"], value_set=drop)))
        if watermark is not None and target.exists():
            old = pq.read_table(target)
            replaced = pa.concat_arrays([pc.unique(fresh["id"]), drop])
            keep = pc.invert(pc.is_in(old["id"], value_set=replaced))
            table = pa.concat_tables([old.filter(keep), table.cast(old.schema)])
        pq.write_table(table, target)
        rows[name] = table.num_rows
    new_mark = engine.query("SELECT max(last_updated) AS m FROM fhir_resources")["m"][0].as_py()
    if new_mark is None or (watermark is not None and new_mark < watermark):
        new_mark = watermark  # nothing newer arrived: keep the old watermark
    (out / STATE_FILE).write_text(json.dumps({"watermark": new_mark}), encoding="utf-8")
    return RefreshSummary("incremental" if watermark else "full", loaded, rows, new_mark)
