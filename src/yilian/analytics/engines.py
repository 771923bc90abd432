"""Engines that run compiled views: DuckDB (embedded default) and Apache Spark (city scale).

One ``Engine`` interface (STYLE.md item 12) so the same ViewDefinitions, the same contract tests
and the same downstream SQL run on both. Resources live in one table,
``fhir_resources(resource_type, id, last_updated, resource)``, where ``resource`` is the engine's
semi-structured type (DuckDB ``JSON``; Spark ``VARIANT``) — see dialects.py.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from yilian.analytics import viewstore
from yilian.analytics.compiler import RESOURCE_TABLE, compile_view
from yilian.analytics.decimal_text import duckdb_marking_sql, spark_marking_column
from yilian.analytics.errors import ViewExecutionError
from yilian.analytics.viewdef import ViewDefinition

log = logging.getLogger(__name__)

_RAW_SCHEMA = pa.schema([("resource_type", pa.string()), ("id", pa.string()), ("raw", pa.string())])


def _raw_table(resources: Iterable[Mapping[str, Any]]) -> pa.Table:
    rows = [
        {"resource_type": r.get("resourceType"), "id": r.get("id"), "raw": json.dumps(r)}
        for r in resources
    ]
    return pa.Table.from_pylist(rows, schema=_RAW_SCHEMA)


class Engine(ABC):
    """Load resources, run ViewDefinitions and SQL, return Arrow tables."""

    dialect: str

    @abstractmethod
    def load_resources(self, resources: Iterable[Mapping[str, Any]]) -> int:
        """Replace the resource table with ``resources`` (FHIR JSON dicts); return the count."""

    @abstractmethod
    def load_ndjson(self, paths: Sequence[Path], *, keep_decimal_text: bool = True) -> int:
        """Replace the resource table with the resources in NDJSON files (Bulk Data export).

        ``keep_decimal_text=False`` skips the decimal-text pass (decimal_text.py): only for views
        whose ``CompiledView.reads_number_text`` is False, which never read a number as text.
        """

    @abstractmethod
    def query(self, sql: str) -> pa.Table:
        """Run SQL written in this engine's dialect."""

    @abstractmethod
    def register(self, name: str, table: pa.Table) -> None:
        """Expose an Arrow table (e.g. a materialised view) to SQL under ``name``."""

    @abstractmethod
    def close(self) -> None: ...

    def write_parquet(self, sql: str, path: Path) -> int:
        """Run ``sql`` and write its rows to the Parquet file ``path``; return the row count.

        Default: the result comes to Python as Arrow and pyarrow writes it (one thread).
        """
        table = self.query(sql)
        pq.write_table(table, path)
        return int(table.num_rows)

    @abstractmethod
    def execute(self, sql: str) -> None:
        """Run a statement that returns no rows (DDL)."""

    def run_view(
        self, view: Mapping[str, object] | ViewDefinition, *, table: str = RESOURCE_TABLE
    ) -> pa.Table:
        """Validate, compile and run ``view`` over ``table``; columns in the view's order."""
        compiled = compile_view(view, self.dialect, table=table)
        return self.query(compiled.sql)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBEngine(Engine):
    """DuckDB in-process; ``database`` is a file path or ``:memory:``."""

    dialect = "duckdb"

    def __init__(self, database: str = ":memory:", threads: int | None = None) -> None:
        import duckdb

        self.database = database
        self._con = duckdb.connect(database)
        if threads is not None:
            self._con.execute(f"SET threads = {int(threads)}")

    def _create_from(self, select_sql: str) -> int:
        # One parse per resource for the three keys (each json_extract_string parses it).
        self._con.execute(
            f"CREATE OR REPLACE TABLE {RESOURCE_TABLE} AS SELECT _k[1] AS resource_type, "
            "_k[2] AS id, _k[3] AS last_updated, resource FROM (SELECT resource, "
            "json_extract_string(resource, ['$.resourceType', '$.id', '$.meta.lastUpdated']) "
            f"AS _k FROM ({select_sql}))"
        ).fetchall()
        rows = self._con.execute(f"SELECT count(*) FROM {RESOURCE_TABLE}").fetchall()
        return int(rows[0][0])

    def load_resources(self, resources: Iterable[Mapping[str, Any]]) -> int:
        raw = _raw_table(resources)
        self._con.register("_yilian_raw", raw)
        try:
            return self._create_from(
                f"SELECT CAST({duckdb_marking_sql('raw')} AS JSON) AS resource FROM _yilian_raw"
            )
        finally:
            self._con.unregister("_yilian_raw")

    def load_ndjson(self, paths: Sequence[Path], *, keep_decimal_text: bool = True) -> int:
        files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
        text = "CAST(json AS VARCHAR)"
        resource = f"CAST({duckdb_marking_sql(text)} AS JSON)" if keep_decimal_text else "json"
        return self._create_from(
            f"SELECT {resource} AS resource FROM read_ndjson_objects([{files}])"
        )

    def query(self, sql: str) -> pa.Table:
        try:
            return self._con.sql(sql).to_arrow_table()
        except Exception as exc:  # duckdb raises many exception classes; keep its message
            raise ViewExecutionError(f"duckdb: {exc}") from exc

    def execute(self, sql: str) -> None:
        try:
            self._con.execute(sql).fetchall()
        except Exception as exc:  # keep the engine's message
            raise ViewExecutionError(f"duckdb: {exc}") from exc

    def register(self, name: str, table: pa.Table) -> None:
        self._con.register(name, table)

    def write_parquet(self, sql: str, path: Path) -> int:
        """DuckDB writes the file itself (``COPY … TO``): the query and the Parquet encoding run
        on every thread, and no Arrow table is handed to Python. Row order is not kept (a view
        is a set of rows), which lets DuckDB write row groups in parallel."""
        target = "'" + str(path).replace("'", "''") + "'"
        try:
            self._con.execute("SET preserve_insertion_order = false")
            rows = self._con.execute(f"COPY ({sql}) TO {target} (FORMAT parquet)").fetchall()
        except Exception as exc:  # keep the engine's message
            raise ViewExecutionError(f"duckdb: {exc}") from exc
        finally:
            self._con.execute("RESET preserve_insertion_order")
        return int(rows[0][0])

    def attach_views(self, out: Path) -> list[str]:
        """Expose every materialised view in ``out`` (a refresh's output) as a SQL view."""
        return viewstore.register(self._con, out)

    def close(self) -> None:
        self._con.close()


def local_spark_session(app_name: str = "yilian") -> Any:
    """A local-mode SparkSession sized for this 2-core machine (UI off, 2 shuffle partitions)."""
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


class SparkEngine(Engine):
    """Apache Spark through pyspark (≥ 4.0 for VARIANT); pass a session to run on a cluster."""

    dialect = "spark"

    def __init__(self, session: Any | None = None) -> None:
        self._spark = session if session is not None else local_spark_session()

    def _publish(self, frame: Any) -> int:
        frame = frame.selectExpr(
            "resource_type",
            "id",
            "CAST(variant_get(resource, '$.meta.lastUpdated', 'string') AS STRING) AS last_updated",
            "resource",
        ).cache()
        frame.createOrReplaceTempView(RESOURCE_TABLE)
        return int(frame.count())

    def load_resources(self, resources: Iterable[Mapping[str, Any]]) -> int:
        rows = [(r.get("resourceType"), r.get("id"), json.dumps(r)) for r in resources]
        frame = self._spark.createDataFrame(rows, "resource_type string, id string, raw string")
        return self._publish(self._parse(frame, "raw").drop("raw"))

    @staticmethod
    def _parse(frame: Any, text_column: str, keep_decimal_text: bool = True) -> Any:
        """Add ``resource`` VARIANT parsed from ``text_column``, decimal text kept."""
        from pyspark.sql import functions as f

        text = f.col(text_column)
        marked = spark_marking_column(text) if keep_decimal_text else text
        return frame.withColumn("resource", f.parse_json(marked))

    def load_ndjson(self, paths: Sequence[Path], *, keep_decimal_text: bool = True) -> int:
        lines = self._spark.read.text([str(p) for p in paths])
        frame = self._parse(lines, "value", keep_decimal_text).select("resource")
        frame = frame.selectExpr(
            "variant_get(resource, '$.resourceType', 'string') AS resource_type",
            "variant_get(resource, '$.id', 'string') AS id",
            "resource",
        )
        return self._publish(frame)

    def query(self, sql: str) -> pa.Table:
        try:
            return self._spark.sql(sql).toArrow()
        except Exception as exc:  # py4j/pyspark raise many classes; keep the message
            raise ViewExecutionError(f"spark: {str(exc).splitlines()[0]}") from exc

    def execute(self, sql: str) -> None:
        self.query(sql)

    def register(self, name: str, table: pa.Table) -> None:
        self._spark.createDataFrame(table).createOrReplaceTempView(name)

    def close(self) -> None:
        """Leave the session running: it is shared (start-up costs seconds)."""


def make_engine(name: str) -> Engine:
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        return SparkEngine()
    raise ValueError(f"engine must be 'duckdb' or 'spark', got {name!r}")
