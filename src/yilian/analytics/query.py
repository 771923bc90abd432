"""The query API over the core views: get an engine whose tables are the views, then run SQL.

Two ways to have the views as tables:

- ``open_views(directory)`` — what a refresh wrote (``yilian views refresh``): every view is a
  table named after it, its incremental delta parts merged on read (``viewstore``). The
  city-scale path: the refresh does the work once, queries read columns.
- ``views_over(resources, names)`` — compute the named core views (and each derived table whose
  inputs are among them) from FHIR resources in memory. For live figures over a small selection
  of resources (e.g. a district's referrals), with the same view definitions and SQL.

Either way the caller writes SQL over view names (``engine.query(sql)`` → Arrow table), so a
figure is defined once whatever its source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from yilian.analytics.catalog import DERIVED, core_views
from yilian.analytics.compiler import compile_view
from yilian.analytics.engines import DuckDBEngine

__all__ = ["open_views", "view_sql", "views_over"]


def open_views(directory: Path) -> DuckDBEngine:
    """A DuckDB engine with every view a refresh wrote to ``directory`` as a table, current rows
    only: reading the base Parquet files alone would miss what incremental refreshes changed."""
    engine = DuckDBEngine()
    engine.attach_views(directory)
    return engine


@cache
def view_sql(name: str, dialect: str) -> str:
    """A core view's SQL in ``dialect``, compiled once per process (compiling costs far more
    than running it over a district's referrals: ~1 s a view, profiled)."""
    return compile_view(core_views()[name], dialect).sql


def views_over(resources: Iterable[Mapping[str, Any]], names: Sequence[str]) -> DuckDBEngine:
    """A DuckDB engine with the core views ``names`` computed from ``resources`` as tables, and
    every derived table (``catalog.DERIVED``) whose inputs are all among them."""
    views = core_views()
    unknown = [n for n in names if n not in views]
    if unknown:
        raise KeyError(f"not core views: {unknown}; known: {sorted(views)}")
    engine = DuckDBEngine()
    engine.load_resources(resources)
    for name in names:
        engine.register(name, engine.query(view_sql(name, engine.dialect)))
    for derived in DERIVED:
        if all(i in names for i in derived.inputs):
            engine.register(derived.name, engine.query(derived.sql))
    return engine
