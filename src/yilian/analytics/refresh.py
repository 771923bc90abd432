"""Materialise the core views (views/*.json) from a Bulk Data NDJSON export to Parquet.

Full mode rebuilds every view. Incremental mode keeps a watermark (the largest
``meta.lastUpdated`` seen, stored in ``_refresh_state.json``), runs the views only over
resources updated after it, and replaces those resources' rows in the existing Parquet files
(every core view carries the resource ``id``; FHIR Bulk Data export writes the current version
of each resource, https://hl7.org/fhir/uv/bulkdata/export.html).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
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


def _load_state(out: Path) -> dict[str, Any]:
    path = out / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def refresh(
    engine: Engine,
    source: Path,
    out: Path,
    *,
    incremental: bool = False,
    on_view: Callable[[str], None] | None = None,
) -> RefreshSummary:
    """Build ``out/<view>.parquet`` for every core view from ``source/*.ndjson``."""
    files = sorted(source.glob("*.ndjson"))
    if not files:
        raise FileNotFoundError(f"no *.ndjson files in {source}")
    out.mkdir(parents=True, exist_ok=True)
    state = _load_state(out)
    watermark = state.get("watermark") if incremental else None
    loaded = engine.load_ndjson(files)
    table_name = "fhir_resources"
    if watermark is not None:
        # Only resources changed since the last refresh go through the views.
        engine.execute(
            "CREATE OR REPLACE TEMP VIEW fhir_changed AS SELECT * FROM fhir_resources "
            f"WHERE last_updated > '{watermark}'"
        )
        table_name = "fhir_changed"
    rows: dict[str, int] = {}
    for name, view in core_views().items():
        if on_view is not None:
            on_view(name)
        fresh = engine.run_view(view, table=table_name)
        target = out / f"{name}.parquet"
        table = fresh
        if watermark is not None and target.exists():
            old = pq.read_table(target)
            keep = pc.invert(pc.is_in(old["id"], value_set=pc.unique(fresh["id"])))
            table = pa.concat_tables([old.filter(keep), fresh.cast(old.schema)])
        pq.write_table(table, target)
        rows[name] = table.num_rows
    new_mark = engine.query("SELECT max(last_updated) AS m FROM fhir_resources")["m"][0].as_py()
    (out / STATE_FILE).write_text(json.dumps({"watermark": new_mark}), encoding="utf-8")
    return RefreshSummary("incremental" if watermark else "full", loaded, rows, new_mark)
