"""Credit lots: an account's lots beside its plan lot (accounts and the ledger's snapshot
after each entry), and the lots a hold's credits came from.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

Nullable JSON columns: NULL is an account with only its plan lot, or a hold whose credits
all came from the plan lot, which is what every existing row is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON(none_as_null=True)


def upgrade() -> None:
    op.add_column("tokenplans_accounts", sa.Column("lots", _json(), nullable=True))
    op.add_column("tokenplans_ledger_entries", sa.Column("lots", _json(), nullable=True))
    op.add_column("tokenplans_holds", sa.Column("draws", _json(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokenplans_holds") as batch:
        batch.drop_column("draws")
    with op.batch_alter_table("tokenplans_ledger_entries") as batch:
        batch.drop_column("lots")
    with op.batch_alter_table("tokenplans_accounts") as batch:
        batch.drop_column("lots")
