"""Create or upgrade the database schema by running the Alembic migrations.

Tests, the demo and ``yilian serve`` all build the schema this way, so the schema that is tested
is the schema that ships. Each module's tables are registered in ``MODEL_MODULES``.
"""

from __future__ import annotations

import importlib
from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

from yilian.db import Base

# Modules that declare tables on yilian.db.Base; imported so that metadata is complete.
MODEL_MODULES = (
    "yilian.fhir.models",
    "yilian.audit.models",
    "yilian.fhir.search.models",
    "yilian.fhir.bulk.models",
    "yilian.auth.models",
    "yilian.mpi.review.models",
    "yilian.mpi.models",
)


def all_metadata() -> MetaData:
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("yilian") / "migrations"))
    return cfg


def upgrade_to_head(engine: Engine) -> None:
    """Bring the database to the newest schema (all heads). Safe to call on every start."""
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")
