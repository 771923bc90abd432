"""The migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from yilian.schema import all_metadata


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, all_metadata())
    assert diff == []


def test_documents_are_compressed_with_lz4_on_postgresql(engine: Engine) -> None:
    """Migration 0009 (ADR 0018): the large JSON documents use lz4 where PostgreSQL has it."""
    if engine.dialect.name != "postgresql":
        return  # SQLite stores documents uncompressed
    with engine.connect() as conn:
        has_lz4 = (
            "lz4"
            in conn.execute(
                text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
            ).scalar_one()
        )
        methods = dict(
            conn.execute(
                text(
                    "SELECT attrelid::regclass::text || '.' || attname, attcompression "
                    "FROM pg_attribute WHERE (attrelid::regclass::text, attname) IN "
                    "(('fhir_resource', 'content'), ('fhir_resource_version', 'content'), "
                    "('audit_entry', 'resources'))"
                )
            ).all()
        )
    expected = "l" if has_lz4 else ""
    assert methods == {
        "fhir_resource.content": expected,
        "fhir_resource_version.content": expected,
        "audit_entry.resources": expected,
    }
