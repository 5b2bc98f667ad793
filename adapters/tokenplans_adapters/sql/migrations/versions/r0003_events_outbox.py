"""Add the outbox of events, webhook endpoints and their deliveries (docs/events.md).

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-05

Written out in full rather than built from the live ``metadata``, as every revision is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tokenplans_adapters.sql.schema import ExactText, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = 64


def upgrade() -> None:
    op.create_table(
        "tokenplans_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("event_id", ExactText(_ID), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("subject", ExactText(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_tokenplans_events"),
        sa.UniqueConstraint("event_id", name="uq_tokenplans_events_event_id"),
        sa.UniqueConstraint("position", name="uq_tokenplans_events_position"),
    )
    state = op.create_table(
        "tokenplans_outbox_state",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tokenplans_outbox_state"),
    )
    op.bulk_insert(state, [{"id": 1, "last_position": 0}])
    op.create_table(
        "tokenplans_webhook_endpoints",
        sa.Column("id", ExactText(_ID), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("events", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_at", UtcDateTime(), nullable=True),
        sa.Column("failing_since", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokenplans_webhook_endpoints"),
    )
    op.create_table(
        "tokenplans_webhook_deliveries",
        sa.Column("endpoint_id", ExactText(_ID), nullable=False),
        sa.Column("event_id", ExactText(_ID), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("subject", ExactText(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("event_created_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("last_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("leased_until", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("endpoint_id", "event_id", name="pk_tokenplans_webhook_deliveries"),
    )
    op.create_index(
        "ix_tokenplans_webhook_deliveries_status_next_attempt_at",
        "tokenplans_webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_tokenplans_webhook_deliveries_head",
        "tokenplans_webhook_deliveries",
        ["endpoint_id", "subject", "status", "position"],
    )
    op.create_index(
        "ix_tokenplans_webhook_deliveries_endpoint_id_position",
        "tokenplans_webhook_deliveries",
        ["endpoint_id", "position"],
    )


def downgrade() -> None:
    op.drop_table("tokenplans_webhook_deliveries")
    op.drop_table("tokenplans_webhook_endpoints")
    op.drop_table("tokenplans_outbox_state")
    op.drop_table("tokenplans_events")
