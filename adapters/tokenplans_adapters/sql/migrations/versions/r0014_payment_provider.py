"""Payments name their provider: ``provider``, the gateway that made the order.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08

Each payment provider now owns its payments: only its proofs and webhooks confirm them.
Every payment stored before was made at Razorpay, the only provider there was, so existing
rows get ``razorpay``. The column has no default afterwards: the service always says.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_PAYMENTS = "tokenplans_payments"


def upgrade() -> None:
    op.add_column(
        _PAYMENTS,
        sa.Column("provider", sa.String(32), nullable=False, server_default="razorpay"),
    )
    with op.batch_alter_table(_PAYMENTS) as batch:
        batch.alter_column(
            "provider", existing_type=sa.String(32), existing_nullable=False, server_default=None
        )


def downgrade() -> None:
    with op.batch_alter_table(_PAYMENTS) as batch:
        batch.drop_column("provider")
