"""Create tokenplans' tables: accounts, their ledger, debit receipts, holds, payments and
handled payment events.

Revision ID: 0001
Revises:
Create Date: 2026-12-05

The first released schema (the unreleased revisions before it were folded into this
one). Written out in full rather than built from the live ``metadata``, so this revision
keeps meaning the same schema after the models move on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tokenplans_adapters.sql.schema import ExactText, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _snapshot_columns() -> list[sa.Column[object]]:
    """An account snapshot's columns: the accounts row and each ledger entry's after."""
    return [
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("token_quota", sa.BigInteger(), nullable=False),
        sa.Column("token_used", sa.BigInteger(), nullable=False),
        sa.Column("period_start", UtcDateTime(), nullable=False),
        sa.Column("period_end", UtcDateTime(), nullable=False),
        sa.Column("plan_end_at", UtcDateTime(), nullable=True),
        sa.Column("token_held", sa.BigInteger(), nullable=False, server_default="0"),
    ]


def _priced_columns() -> list[sa.Column[object]]:
    """A priced entry's model call: its model and token counts, credits, price version."""
    counts = (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "credits",
    )
    return [
        sa.Column("model", sa.String(200), nullable=True),
        *(sa.Column[object](name, sa.BigInteger(), nullable=True) for name in counts),
        sa.Column("price_version", sa.String(64), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "tokenplans_accounts",
        sa.Column("subject", ExactText(), nullable=False),
        *_snapshot_columns(),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_tokenplans_accounts"),
    )
    op.create_table(
        "tokenplans_ledger_entries",
        sa.Column("subject", ExactText(), nullable=False),
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("quota_delta", sa.BigInteger(), nullable=False),
        sa.Column("used_delta", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("actor", ExactText(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("held_delta", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("facts", sa.JSON(none_as_null=True), nullable=True),
        *_priced_columns(),
        *_snapshot_columns(),
        sa.PrimaryKeyConstraint("subject", "version", name="pk_tokenplans_ledger_entries"),
    )
    op.create_table(
        "tokenplans_debit_receipts",
        sa.Column("subject", ExactText(), nullable=False),
        sa.Column("caller", ExactText(), nullable=False),
        sa.Column("idempotency_key", ExactText(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("request", ExactText(), nullable=False),
        sa.PrimaryKeyConstraint(
            "subject", "caller", "idempotency_key", name="pk_tokenplans_debit_receipts"
        ),
    )
    op.create_table(
        "tokenplans_holds",
        sa.Column("subject", ExactText(), nullable=False),
        sa.Column("caller", ExactText(), nullable=False),
        sa.Column("hold_id", ExactText(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("settled", sa.BigInteger(), nullable=True),
        sa.Column("overage", sa.BigInteger(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.Column("request", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("subject", "caller", "hold_id", name="pk_tokenplans_holds"),
    )
    op.create_index(
        "ix_tokenplans_holds_subject_status_created_at",
        "tokenplans_holds",
        ["subject", "status", "created_at"],
    )
    op.create_index(
        "ix_tokenplans_holds_status_expires_at", "tokenplans_holds", ["status", "expires_at"]
    )
    op.create_table(
        "tokenplans_payments",
        sa.Column("id", ExactText(), nullable=False),
        sa.Column("subject", ExactText(), nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("order_id", ExactText(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("gateway_payment_id", ExactText(), nullable=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tokenplans_payments"),
        sa.UniqueConstraint("order_id", name="uq_tokenplans_payments_order_id"),
    )
    op.create_index(
        "ix_tokenplans_payments_subject_created_at_id",
        "tokenplans_payments",
        ["subject", "created_at", "id"],
    )
    op.create_table(
        "tokenplans_payment_events",
        sa.Column("event_id", ExactText(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_tokenplans_payment_events"),
    )


def downgrade() -> None:
    op.drop_table("tokenplans_payment_events")
    op.drop_index("ix_tokenplans_payments_subject_created_at_id", "tokenplans_payments")
    op.drop_table("tokenplans_payments")
    op.drop_index("ix_tokenplans_holds_status_expires_at", "tokenplans_holds")
    op.drop_index("ix_tokenplans_holds_subject_status_created_at", "tokenplans_holds")
    op.drop_table("tokenplans_holds")
    op.drop_table("tokenplans_debit_receipts")
    op.drop_table("tokenplans_ledger_entries")
    op.drop_table("tokenplans_accounts")
