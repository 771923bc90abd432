"""audit chain: hash-chained audit entries and their patient index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:05:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("recorded", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_role", sa.String(length=128), nullable=True),
        sa.Column("action", sa.String(length=1), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("resources", _json(), nullable=False),
        sa.Column("patients", _json(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.SmallInteger(), nullable=False),
        sa.Column("outcome_desc", sa.Text(), nullable=True),
        sa.Column("source_address", sa.String(length=256), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entry")),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entry_actor", ["actor", "seq"], unique=False)
        batch_op.create_index("ix_audit_entry_recorded", ["recorded"], unique=False)

    op.create_table(
        "audit_patient",
        sa.Column("patient", sa.String(length=128), nullable=False),
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["seq"], ["audit_entry.seq"], name=op.f("fk_audit_patient_seq_audit_entry")
        ),
        sa.PrimaryKeyConstraint("patient", "seq", name=op.f("pk_audit_patient")),
    )
    with op.batch_alter_table("audit_patient", schema=None) as batch_op:
        batch_op.create_index("ix_audit_patient_seq", ["seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_patient", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_patient_seq")

    op.drop_table("audit_patient")
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entry_recorded")
        batch_op.drop_index("ix_audit_entry_actor")

    op.drop_table("audit_entry")
