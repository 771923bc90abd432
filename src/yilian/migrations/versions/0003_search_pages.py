"""fhir search: snapshots of multi-page searches

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fhir_search",
        sa.Column("search_id", sa.String(length=36), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("expires", sa.DateTime(), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=True),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("search_id", name=op.f("pk_fhir_search")),
    )
    with op.batch_alter_table("fhir_search", schema=None) as batch_op:
        batch_op.create_index("ix_fhir_search_expires", ["expires"], unique=False)

    op.create_table(
        "fhir_search_result",
        sa.Column("search_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "resource_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["fhir_search.search_id"],
            name=op.f("fk_fhir_search_result_search_id_fhir_search"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("search_id", "position", name=op.f("pk_fhir_search_result")),
    )


def downgrade() -> None:
    op.drop_table("fhir_search_result")
    with op.batch_alter_table("fhir_search", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_search_expires")
    op.drop_table("fhir_search")
