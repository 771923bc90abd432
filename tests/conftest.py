"""Shared fixtures: every store/API test runs against SQLite *and* PostgreSQL.

PostgreSQL: each test session creates its own database on the local server
(``YILIAN_TEST_PG_ADMIN_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
and drops it at the end. Between tests every table is emptied, so tests that commit (API and
concurrency tests) see a clean database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from yilian.db import Base, make_engine
from yilian.schema import upgrade_to_head

ADMIN_URL = os.environ.get(
    "YILIAN_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]


def _pg_database(worker: str) -> Iterator[str]:
    name = f"yilian_test_{worker}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    sqlite_path = Path(tmp_path_factory.mktemp("sqlite")) / "yilian.sqlite"
    pg = _pg_database(worker)
    urls = {"sqlite": f"sqlite:///{sqlite_path}", "postgresql": next(pg)}
    yield urls
    pg.close()


@pytest.fixture(scope="session")
def _engines(database_urls: dict[str, str]) -> Iterator[dict[str, Engine]]:
    engines = {name: make_engine(url) for name, url in database_urls.items()}
    for engine in engines.values():
        upgrade_to_head(engine)
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, _engines: dict[str, Engine]) -> Iterator[Engine]:
    """A migrated database of the parametrised backend, emptied after the test."""
    engine = _engines[backend]
    yield engine
    empty_all_tables(engine)


def empty_all_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
                )
            )
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
