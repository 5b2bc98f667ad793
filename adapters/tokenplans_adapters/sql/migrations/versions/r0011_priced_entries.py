"""Priced ledger entries: the model call a debit, hold or settle was priced from.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

Nullable columns on the ledger: entries written before pricing were not priced, so
theirs stay NULL. Written out in full, as every revision is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "credits",
)


def upgrade() -> None:
    op.add_column("tokenplans_ledger_entries", sa.Column("model", sa.String(200), nullable=True))
    for name in _COUNTS:
        op.add_column("tokenplans_ledger_entries", sa.Column(name, sa.BigInteger(), nullable=True))
    op.add_column(
        "tokenplans_ledger_entries", sa.Column("price_version", sa.String(64), nullable=True)
    )


def downgrade() -> None:
    for name in ("price_version", *reversed(_COUNTS), "model"):
        op.drop_column("tokenplans_ledger_entries", name)
