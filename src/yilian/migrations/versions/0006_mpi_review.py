"""mpi review: the data steward's queue of candidate pairs and the log of decisions on them

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "mpi_review",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_a", sa.String(length=64), nullable=False),
        sa.Column("patient_b", sa.String(length=64), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("comparisons", JSON, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=256), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mpi_review")),
        sa.UniqueConstraint("patient_a", "patient_b", name="uq_mpi_review_pair"),
    )
    op.create_index("ix_mpi_review_status_probability", "mpi_review", ["status", "probability"])
    op.create_index("ix_mpi_review_patient_b", "mpi_review", ["patient_b"])
    op.create_table(
        "mpi_review_decision",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.Column("undone", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["mpi_review.id"],
            name=op.f("fk_mpi_review_decision_review_id_mpi_review"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mpi_review_decision")),
    )
    op.create_index("ix_mpi_review_decision_review", "mpi_review_decision", ["review_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_mpi_review_decision_review", table_name="mpi_review_decision")
    op.drop_table("mpi_review_decision")
    op.drop_index("ix_mpi_review_patient_b", table_name="mpi_review")
    op.drop_index("ix_mpi_review_status_probability", table_name="mpi_review")
    op.drop_table("mpi_review")
