"""Create tokenplans' tables: accounts, ledger entries, debit receipts, payments, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written out in full rather than built from the live ``metadata``, so this revision keeps
meaning the same schema after the models move on.
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
    return [
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("token_quota", sa.BigInteger(), nullable=False),
        sa.Column("token_used", sa.BigInteger(), nullable=False),
        sa.Column("period_start", UtcDateTime(), nullable=False),
        sa.Column("period_end", UtcDateTime(), nullable=False),
        sa.Column("plan_end_at", UtcDateTime(), nullable=True),
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
        sa.Column("idempotency_key", ExactText(), nullable=True),
        sa.Column("payment_id", ExactText(), nullable=True),
        sa.Column("actor", ExactText(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        *_snapshot_columns(),
        sa.PrimaryKeyConstraint("subject", "version", name="pk_tokenplans_ledger_entries"),
    )
    op.create_table(
        "tokenplans_debit_receipts",
        sa.Column("subject", ExactText(), nullable=False),
        sa.Column("idempotency_key", ExactText(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("token_quota", sa.BigInteger(), nullable=False),
        sa.Column("token_used", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("plan_end_at", UtcDateTime(), nullable=True),
        sa.Column("period_start", UtcDateTime(), nullable=False),
        sa.Column("period_end", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "idempotency_key", name="pk_tokenplans_debit_receipts"),
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
    op.drop_table("tokenplans_debit_receipts")
    op.drop_table("tokenplans_ledger_entries")
    op.drop_table("tokenplans_accounts")
