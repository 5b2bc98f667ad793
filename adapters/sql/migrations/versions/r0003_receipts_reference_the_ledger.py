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

from adapters.sql.schema import UtcDateTime

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


#: Each copied column, refilled from the receipt's entry (same subject and version).
_REFILL = """
UPDATE tokenplans_debit_receipts SET
  plan_id = (SELECT e.plan_id FROM tokenplans_ledger_entries e
    WHERE e.subject = tokenplans_debit_receipts.subject
    AND e.version = tokenplans_debit_receipts.version),
  token_quota = (SELECT e.token_quota FROM tokenplans_ledger_entries e
    WHERE e.subject = tokenplans_debit_receipts.subject
    AND e.version = tokenplans_debit_receipts.version),
  token_used = (SELECT e.token_used FROM tokenplans_ledger_entries e
    WHERE e.subject = tokenplans_debit_receipts.subject
    AND e.version = tokenplans_debit_receipts.version),
  remaining = (SELECT CASE WHEN e.token_quota > e.token_used
      THEN e.token_quota - e.token_used ELSE 0 END
    FROM tokenplans_ledger_entries e
    WHERE e.subject = tokenplans_debit_receipts.subject
    AND e.version = tokenplans_debit_receipts.version),
  plan_end_at = (SELECT e.plan_end_at FROM tokenplans_ledger_entries e
    WHERE e.subject = tokenplans_debit_receipts.subject
    AND e.version = tokenplans_debit_receipts.version),
  period_start = (SELECT e.period_start FROM tokenplans_ledger_entries e
    WHERE e.subject = tokenplans_debit_receipts.subject
    AND e.version = tokenplans_debit_receipts.version),
  period_end = (SELECT e.period_end FROM tokenplans_ledger_entries e
    WHERE e.subject = tokenplans_debit_receipts.subject
    AND e.version = tokenplans_debit_receipts.version)
"""


def downgrade() -> None:
    with op.batch_alter_table(_RECEIPTS) as batch:
        for column in _usage_columns():
            batch.add_column(column)
    op.execute(_REFILL)
    with op.batch_alter_table(_RECEIPTS) as batch:
        for column in _usage_columns():
            if column.name != "plan_end_at":
                batch.alter_column(column.name, existing_type=column.type, nullable=False)
