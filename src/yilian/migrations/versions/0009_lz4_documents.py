"""PostgreSQL: stored documents compressed with lz4 instead of pglz (ADR 0018)

A ``$everything`` writes one ~170 KB AuditEvent (it names every returned resource) and its chain
entry's ~25 KB list of references; PostgreSQL compresses such values when it moves them out of
line (TOAST). lz4 compresses them in about half of pglz's CPU time, at a similar size
(docs/benchmarks.md, "`$everything` … 2026-12-08"). ``SET COMPRESSION`` changes only what is
written from now on: existing values stay as they are and both methods read back the same.
lz4 needs PostgreSQL 14 or later built with lz4 (Debian's and the official images are); without
it the columns keep pglz. SQLite stores documents uncompressed: nothing to do.

https://www.postgresql.org/docs/current/sql-altertable.html (SET COMPRESSION)

Revision ID: 0009
Revises: 0008 (depends on 0002, the audit chain)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0002"  # audit_entry (a branch of its own)

COLUMNS = (
    ("fhir_resource", "content"),
    ("fhir_resource_version", "content"),
    ("audit_entry", "resources"),
)


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    row = bind.execute(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).first()
    return row is not None and "lz4" in (row[0] or [])  # the setting exists from PostgreSQL 14


def _set(method: str) -> None:
    for table, column in COLUMNS:
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION {method}')


def upgrade() -> None:
    if _lz4_available():
        _set("lz4")


def downgrade() -> None:
    if _lz4_available():
        _set("default")
