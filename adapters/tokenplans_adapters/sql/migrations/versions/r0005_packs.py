"""Packs: the pack a payment buys, and finding a payment by the provider's payment id.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

``tokenplans_payments.pack_id`` is NULL for a plan's payment (every existing row); a
pack's payment stores ``plan_id = ''`` and its pack here. The index on
``gateway_payment_id`` serves a refund event that names only the provider's payment
(Stripe's ``charge.refunded``). A payment's status may now also be ``refunded`` (the
column is a string already).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLE = "tokenplans_payments"
_INDEX = "ix_tokenplans_payments_gateway_payment_id"


def upgrade() -> None:
    op.add_column(_TABLE, sa.Column("pack_id", sa.String(64), nullable=True))
    op.create_index(_INDEX, _TABLE, ["gateway_payment_id"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name=_TABLE)
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_column("pack_id")
