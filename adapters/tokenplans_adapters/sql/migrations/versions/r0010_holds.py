"""Holds: the holds table, ``token_held`` on snapshots, hold facts on ledger entries.

Revision ID: 0010
Revises: 0003
Create Date: 2026-12-01

Existing rows get ``token_held = 0`` and ``held_delta = 0``: before holds, nothing was
held. Written out in full, as every revision is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tokenplans_adapters.sql.schema import ExactText, UtcDateTime

revision = "0010"
down_revision = "0003"
branch_labels = None
depends_on = None


def _zero(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def upgrade() -> None:
    op.add_column("tokenplans_accounts", _zero("token_held"))
    op.add_column("tokenplans_ledger_entries", _zero("token_held"))
    op.add_column("tokenplans_ledger_entries", _zero("held_delta"))
    op.add_column("tokenplans_ledger_entries", sa.Column("hold_id", ExactText(), nullable=True))
    op.add_column("tokenplans_ledger_entries", sa.Column("overage", sa.BigInteger(), nullable=True))
    op.create_table(
        "tokenplans_holds",
        sa.Column("subject", ExactText(), nullable=False),
        sa.Column("hold_id", ExactText(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("settled", sa.BigInteger(), nullable=True),
        sa.Column("overage", sa.BigInteger(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("subject", "hold_id", name="pk_tokenplans_holds"),
    )
    op.create_index(
        "ix_tokenplans_holds_subject_status_created_at",
        "tokenplans_holds",
        ["subject", "status", "created_at"],
    )
    op.create_index(
        "ix_tokenplans_holds_status_expires_at", "tokenplans_holds", ["status", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_tokenplans_holds_status_expires_at", "tokenplans_holds")
    op.drop_index("ix_tokenplans_holds_subject_status_created_at", "tokenplans_holds")
    op.drop_table("tokenplans_holds")
    for column in ("overage", "hold_id", "held_delta", "token_held"):
        op.drop_column("tokenplans_ledger_entries", column)
    op.drop_column("tokenplans_accounts", "token_held")
