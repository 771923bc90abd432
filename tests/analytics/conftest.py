"""Fixtures: a DuckDB engine per test, one Spark session per run (start-up is slow)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from yilian.analytics.engines import DuckDBEngine, Engine, SparkEngine, local_spark_session


@pytest.fixture(scope="session")
def spark_session() -> Iterator[object]:
    session = local_spark_session("yilian-tests")
    yield session
    session.stop()


@pytest.fixture(
    params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)],
)
def any_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "duckdb":
        engine: Engine = DuckDBEngine()
    else:
        engine = SparkEngine(request.getfixturevalue("spark_session"))
    yield engine
    engine.close()
