"""The materialised views on disk: a base Parquet file per view plus incremental delta parts.

A full refresh writes ``OUT/<view>.parquet``. An incremental refresh does not rewrite it (at
city scale that rewrite cost more than the changed rows themselves): refresh number ``n``
writes ``OUT/_delta/<view>.<n>.parquet`` with the rows of the changed resources and
``OUT/_delta/<view>.<n>.drop.parquet`` with the ids of every resource it changed or deleted
(a tombstone list keyed by resource id). A row of part ``k`` (the base is part 0) is current
unless a later part ``j > k`` drops its id: merge on read, done by DuckDB with anti joins.
After ``COMPACT_AFTER`` delta parts a view is compacted back into one base file.

Readers go through this module (``register``, ``read_view``); a bare ``read_parquet`` of the
base file misses the deltas.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

DELTA_DIR = "_delta"
COMPACT_AFTER = 8  # delta parts per view before it is rewritten as one base file


def base_file(out: Path, view: str) -> Path:
    return out / f"{view}.parquet"


def _sql_path(path: Path) -> str:
    return "'" + path.as_posix().replace("'", "''") + "'"


def deltas(out: Path, view: str) -> list[tuple[int, Path, Path]]:
    """The delta parts of ``view``: (refresh number, rows file, dropped-ids file), in order."""
    found = []
    for rows in (out / DELTA_DIR).glob(f"{view}.*.parquet"):
        number = rows.name[len(view) + 1 : -len(".parquet")]
        if number.isdigit():
            found.append((int(number), rows, rows.with_name(f"{view}.{number}.drop.parquet")))
    return sorted(found)


def write_base(out: Path, view: str, table: pa.Table) -> None:
    """Replace ``view`` with ``table`` (full refresh or compaction): its deltas are obsolete."""
    pq.write_table(table, base_file(out, view))
    for _, rows, drop in deltas(out, view):
        rows.unlink()
        drop.unlink(missing_ok=True)


def clear_deltas(out: Path) -> None:
    shutil.rmtree(out / DELTA_DIR, ignore_errors=True)


def append_delta(out: Path, view: str, number: int, rows: pa.Table, dropped: pa.Array) -> None:
    """Record refresh ``number`` for ``view``: ``rows`` supersede every row of ``dropped`` ids."""
    folder = out / DELTA_DIR
    folder.mkdir(exist_ok=True)
    # The tombstones first: a crash in between leaves rows unseen, never duplicated.
    pq.write_table(
        pa.table({"id": dropped.cast(pa.string())}), folder / f"{view}.{number}.drop.parquet"
    )
    pq.write_table(rows, folder / f"{view}.{number}.parquet")


def merged_sql(out: Path, view: str) -> str:
    """DuckDB SQL for the current rows of ``view``: each part minus the ids later parts drop."""
    parts = [(0, base_file(out, view))] + [(n, rows) for n, rows, _ in deltas(out, view)]
    drops = {n: drop for n, _, drop in deltas(out, view)}
    selects = []
    for number, rows in parts:
        later = [_sql_path(p) for n, p in drops.items() if n > number and p.exists()]
        select = f"SELECT * FROM read_parquet({_sql_path(rows)})"
        if later:
            select = (
                f"SELECT _part.* FROM read_parquet({_sql_path(rows)}) AS _part ANTI JOIN "
                f"(SELECT DISTINCT id FROM read_parquet([{', '.join(later)}])) AS _gone "
                "USING (id)"
            )
        selects.append(select)
    return "\nUNION ALL BY NAME\n".join(selects)


def names(out: Path) -> list[str]:
    """Every materialised view and derived table in ``out``."""
    return sorted(p.stem for p in out.glob("*.parquet"))


def register(con: duckdb.DuckDBPyConnection, out: Path, only: Iterable[str] = ()) -> list[str]:
    """Create one DuckDB view per materialised view (deltas merged); returns their names."""
    wanted = list(only) or names(out)
    for name in wanted:
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {merged_sql(out, name)}')
    return wanted


def read_view(out: Path, view: str) -> pa.Table:
    """The current rows of ``view`` as Arrow."""
    con = duckdb.connect()
    try:
        return con.sql(merged_sql(out, view)).to_arrow_table()
    finally:
        con.close()


def compact(out: Path, view: str) -> None:
    """Rewrite ``view`` as one base file (its current rows) and drop its delta parts."""
    write_base(out, view, read_view(out, view))
