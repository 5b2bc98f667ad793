"""Receipts reference their ledger entry instead of copying the usage.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

A receipt's usage is the snapshot after the debit's ledger entry, which has the same
subject and version and is written in the same transaction: the copy in the receipt row
was a second spelling of the snapshot's fields. A replay now reads that entry (one
primary-key read, only when a receipt is found). Nothing needs filling in on upgrade; the
entries are already there. A downgrade copies the usage back from them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tokenplans_adapters.sql.schema import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_RECEIPTS = "tokenplans_debit_receipts"


def _usage_columns() -> list[sa.Column[object]]:
    """The copied usage, as revision 0001 created it (nullable until refilled)."""
    return [
        sa.Column("plan_id", sa.String(64), nullable=True),
        sa.Column("token_quota", sa.BigInteger(), nullable=True),
        sa.Column("token_used", sa.BigInteger(), nullable=True),
        sa.Column("remaining", sa.BigInteger(), nullable=True),
        sa.Column("plan_end_at", UtcDateTime(), nullable=True),
        sa.Column("period_start", UtcDateTime(), nullable=True),
        sa.Column("period_end", UtcDateTime(), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table(_RECEIPTS) as batch:
        for column in _usage_columns():
            batch.drop_column(column.name)


def _refill() -> sa.Update:
    """The UPDATE that copies each receipt's usage back from its entry (same subject and
    version), one correlated subquery per column."""
    names = [column.name for column in _usage_columns() if column.name != "remaining"]
    receipts = sa.table(
        _RECEIPTS,
        sa.column("subject"),
        sa.column("version"),
        *(sa.column(column.name) for column in _usage_columns()),
    )
    entries = sa.table(
        "tokenplans_ledger_entries",
        sa.column("subject"),
        sa.column("version"),
        *(sa.column(name) for name in names),
    )

    def from_entry(value: sa.ColumnElement[object]) -> sa.ScalarSelect[object]:
        return (
            sa.select(value)
            .where(entries.c.subject == receipts.c.subject)
            .where(entries.c.version == receipts.c.version)
            .scalar_subquery()
        )

    quota, used = entries.c.token_quota, entries.c.token_used
    remaining = sa.case((quota > used, quota - used), else_=0)
    copied = {name: from_entry(entries.c[name]) for name in names}
    return receipts.update().values({**copied, "remaining": from_entry(remaining)})


def downgrade() -> None:
    with op.batch_alter_table(_RECEIPTS) as batch:
        for column in _usage_columns():
            batch.add_column(column)
    op.execute(_refill())
    with op.batch_alter_table(_RECEIPTS) as batch:
        for column in _usage_columns():
            if column.name != "plan_end_at":
                batch.alter_column(column.name, existing_type=column.type, nullable=False)
