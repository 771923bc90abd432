"""search index: no foreign key to fhir_resource and no surrogate pk on the idx_* tables

The writers own the index rows' lifecycle (a new version deletes the old rows in its own
transaction; resources are only soft-deleted) and ``yilian store check`` reports orphans. The
foreign key checks and the never-queried ``pk`` (a sequence call and a B-tree insert per row)
were about a third of PostgreSQL's CPU in a bulk load (ADR 0010, docs/benchmarks.md).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("string", "token", "date", "number", "quantity", "reference", "uri")
KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    for kind in TABLES:
        table = f"idx_{kind}"
        # batch mode: SQLite cannot drop a constraint or a key column in place (the table is
        # rebuilt); PostgreSQL gets plain ALTER TABLE statements.
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_resource_pk_fhir_resource", type_="foreignkey")
            batch_op.drop_column("pk")  # its primary key and sequence go with it


def downgrade() -> None:
    for kind in TABLES:
        table = f"idx_{kind}"
        if op.get_context().dialect.name == "postgresql":
            op.execute(f'ALTER TABLE "{table}" ADD COLUMN pk BIGSERIAL')
            op.create_primary_key(f"pk_{table}", table, ["pk"])
        else:
            with op.batch_alter_table(table, recreate="always") as batch_op:
                batch_op.add_column(sa.Column("pk", KEY, primary_key=True, autoincrement=True))
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_foreign_key(
                f"fk_{table}_resource_pk_fhir_resource",
                "fhir_resource",
                ["resource_pk"],
                ["pk"],
                ondelete="CASCADE",
            )
