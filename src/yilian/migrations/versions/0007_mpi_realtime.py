"""mpi realtime: the blocking-key index of Patients and the stored match model

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "mpi_blocking_key",
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("key", "patient_id", name=op.f("pk_mpi_blocking_key")),
    )
    op.create_index("ix_mpi_blocking_key_patient", "mpi_blocking_key", ["patient_id"])
    op.create_table(
        "mpi_model",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("term_frequencies", JSON, nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("trained_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_mpi_model")),
    )


def downgrade() -> None:
    op.drop_table("mpi_model")
    op.drop_index("ix_mpi_blocking_key_patient", table_name="mpi_blocking_key")
    op.drop_table("mpi_blocking_key")
