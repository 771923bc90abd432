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

The DuckDB copy (ADR 0019): every refresh also leaves ``OUT/views.duckdb``, one table per view
and derived table holding its current rows (deltas folded in), decoded once into DuckDB's
columnar storage (zone maps, no Parquet decode, no anti join per query). Beside each
``dateTime`` column ``c`` it holds ``c_date DATE``, the column's local calendar date (its
first ten characters; NULL for a partial date), so queries by day or week need no per-row
cast. The file carries the refresh's ``generation`` (also in ``_refresh_state.json``);
``register`` reads it only when both agree, and otherwise (an older copy, a copy locked by a
writer) falls back to the Parquet merge, which computes the same ``c_date`` columns on read.
The Parquet files stay the portable output (Spark reads them; the DuckDB file is a cache).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from yilian.analytics.catalog import date_columns

log = logging.getLogger(__name__)

DELTA_DIR = "_delta"
COMPACT_AFTER = 8  # delta parts per view before it is rewritten as one base file
DB_FILE = "views.duckdb"
STATE_FILE = "_refresh_state.json"
_DB_STATE = "_yilian_refresh"  # one row: the generation the copy holds
_ALIAS = "_yilian_views"


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
    clear_view_deltas(out, view)


def clear_view_deltas(out: Path, view: str) -> None:
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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def typed_sql(name: str, columns: Sequence[str], relation: str) -> str:
    """``SELECT *`` from ``relation`` plus ``c_date DATE`` for each ``dateTime`` column ``c``."""
    extra = [
        f"TRY_CAST(left({_quote(c)}, 10) AS DATE) AS {_quote(c + '_date')}"
        for c in date_columns(name, columns)
        if c + "_date" not in columns
    ]
    return f"SELECT {', '.join(['*', *extra])} FROM ({relation})"


def _parquet_columns(out: Path, name: str) -> list[str]:
    return list(pq.read_schema(base_file(out, name)).names)


def state_generation(out: Path) -> str | None:
    """The generation of the last completed refresh (``_refresh_state.json``)."""
    try:
        state = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    generation = state.get("generation") if isinstance(state, dict) else None
    return generation if isinstance(generation, str) else None


def db_generation(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> str | None:
    """The generation a DuckDB copy holds (None: no state table)."""
    table = f"{catalog}.{_DB_STATE}" if catalog else _DB_STATE
    try:
        rows = con.execute(f"SELECT generation FROM {table}").fetchall()
    except duckdb.CatalogException:
        return None
    return str(rows[0][0]) if rows else None


def _attach_db(con: duckdb.DuckDBPyConnection, out: Path) -> bool:
    """Attach ``OUT/views.duckdb`` read-only when it holds the last refresh's rows."""
    path, want = out / DB_FILE, state_generation(out)
    if want is None or not path.exists():
        return False
    attached = con.execute(
        "SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [_ALIAS]
    ).fetchall()
    if attached[0][0]:
        con.execute(
            f"DETACH {_ALIAS}"
        ).fetchall()  # register() again: the file may have been replaced
    try:
        con.execute(f"ATTACH {_sql_path(path)} AS {_ALIAS} (READ_ONLY)").fetchall()
    except duckdb.Error as exc:  # e.g. a refresh holds the write lock: read the Parquet files
        log.info("%s not attached (%s); reading the Parquet files", path, exc)
        return False
    if db_generation(con, _ALIAS) != want:
        con.execute(f"DETACH {_ALIAS}").fetchall()
        return False
    return True


def register(con: duckdb.DuckDBPyConnection, out: Path, only: Iterable[str] = ()) -> list[str]:
    """Create one DuckDB view per materialised view and derived table (current rows, with the
    typed ``c_date`` columns); returns their names. Reads the DuckDB copy when it is current,
    else merges the Parquet parts on read."""
    wanted = list(only) or names(out)
    if _attach_db(con, out):
        for name in wanted:
            con.execute(
                f"CREATE OR REPLACE VIEW {_quote(name)} AS SELECT * FROM {_ALIAS}.{_quote(name)}"
            ).fetchall()
        return wanted
    for name in wanted:
        relation = typed_sql(name, _parquet_columns(out, name), merged_sql(out, name))
        con.execute(f"CREATE OR REPLACE VIEW {_quote(name)} AS {relation}").fetchall()
    return wanted


class ViewDb:
    """Writing the DuckDB copy during a refresh: ``build`` a new file (full refresh, or a copy
    that is missing, stale or locked) or ``fold`` the new delta parts into the current one."""

    def __init__(self, out: Path, previous: str | None) -> None:
        self.out = out
        self.path = out / DB_FILE
        self.tmp = out / (DB_FILE + ".tmp")
        self.con: duckdb.DuckDBPyConnection | None = None
        self.fresh = True
        if previous is not None and self.path.exists():
            try:
                con = duckdb.connect(str(self.path))
            except duckdb.Error as exc:  # a reader holds it: write a new file and swap it in
                log.info("%s busy (%s); rebuilding it", self.path, exc)
            else:
                if db_generation(con) == previous:
                    # One transaction: a crash before commit() leaves the previous copy intact.
                    con.execute("BEGIN TRANSACTION").fetchall()
                    self.con, self.fresh = con, False
                else:
                    con.close()
        if self.con is None:
            self.tmp.unlink(missing_ok=True)
            self.con = duckdb.connect(str(self.tmp))

    def _db(self) -> duckdb.DuckDBPyConnection:
        assert self.con is not None, "ViewDb used after close"
        return self.con

    def replace(self, name: str) -> None:
        """(Re)create ``name`` from its Parquet parts."""
        relation = typed_sql(name, _parquet_columns(self.out, name), merged_sql(self.out, name))
        self._db().execute(f"CREATE OR REPLACE TABLE {_quote(name)} AS {relation}").fetchall()

    def fold(self, name: str, number: int) -> None:
        """Apply delta part ``number`` of ``name``; a new copy, or a view without that part
        (compacted), is (re)created from its Parquet parts instead."""
        parts = {n: (rows, drop) for n, rows, drop in deltas(self.out, name)}
        if self.fresh or number not in parts:
            self.replace(name)
            return
        rows, drop = parts[number]
        con, table = self._db(), _quote(name)
        con.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM read_parquet({_sql_path(drop)}))"
        ).fetchall()
        relation = typed_sql(
            name, pq.read_schema(rows).names, f"SELECT * FROM read_parquet({_sql_path(rows)})"
        )
        con.execute(f"INSERT INTO {table} {relation}").fetchall()

    def derive(self, name: str, sql: str) -> int:
        """Compute a derived table with DuckDB-dialect ``sql`` over the copy's tables (their
        current rows, no Parquet merge), keep it in the copy and write its Parquet base file;
        returns its row count."""
        con = self._db()
        columns = [d[0] for d in con.execute(f"SELECT * FROM ({sql}) LIMIT 0").description]
        relation = typed_sql(name, columns, sql)
        con.execute(f"CREATE OR REPLACE TABLE {_quote(name)} AS {relation}").fetchall()
        listed = ", ".join(_quote(c) for c in columns)
        target = base_file(self.out, name)
        con.execute(
            f"COPY (SELECT {listed} FROM {_quote(name)}) TO {_sql_path(target)} (FORMAT parquet)"
        ).fetchall()
        clear_view_deltas(self.out, name)
        return self.count(name)

    def count(self, name: str) -> int:
        rows = self._db().execute(f"SELECT count(*) FROM {_quote(name)}").fetchall()
        return int(rows[0][0])

    def table(self, name: str) -> pa.Table:
        """The current rows of ``name`` without the added ``c_date`` columns."""
        columns = ", ".join(_quote(c) for c in _parquet_columns(self.out, name))
        return self._db().sql(f"SELECT {columns} FROM {_quote(name)}").to_arrow_table()

    def commit(self, generation: str) -> None:
        """Record ``generation`` and put the file in place (a new file replaces the old one by
        rename: readers that still have the old one open keep reading it)."""
        con = self._db()
        con.execute(f"CREATE OR REPLACE TABLE {_DB_STATE} (generation VARCHAR)").fetchall()
        con.execute(f"INSERT INTO {_DB_STATE} VALUES (?)", [generation]).fetchall()
        if not self.fresh:
            con.execute("COMMIT").fetchall()
        con.close()
        self.con = None
        if self.fresh:
            os.replace(self.tmp, self.path)

    def abandon(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
        self.tmp.unlink(missing_ok=True)


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
