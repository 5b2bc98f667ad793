"""Holds per caller: a hold is keyed by subject, the caller who placed it and its id.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

Before, a hold id was unique per subject, so a user could close the holds its back end
placed, or pre-claim an id the back end would use. Existing holds get as their caller the
actor of their ``hold_placed`` ledger entry (the principal who reserved them), or the
subject itself where no entry names one. ``request`` (a digest of the estimated call a
repeat must match) stays NULL for them: they are matched on their amount, as before.
Written out in full, as every revision is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tokenplans_adapters.sql.schema import ExactText

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_HOLDS = "tokenplans_holds"


def upgrade() -> None:
    op.add_column(_HOLDS, sa.Column("caller", ExactText(), nullable=True))
    op.add_column(_HOLDS, sa.Column("request", sa.String(64), nullable=True))
    holds = sa.table(
        _HOLDS,
        sa.column("subject", ExactText()),
        sa.column("hold_id", ExactText()),
        sa.column("caller", ExactText()),
    )
    entries = sa.table(
        "tokenplans_ledger_entries",
        sa.column("subject", ExactText()),
        sa.column("hold_id", ExactText()),
        sa.column("kind", sa.String(32)),
        sa.column("actor", ExactText()),
        sa.column("version", sa.BigInteger()),
    )
    placer = (
        sa.select(entries.c.actor)
        .where(
            entries.c.subject == holds.c.subject,
            entries.c.hold_id == holds.c.hold_id,
            entries.c.kind == "hold_placed",
        )
        .order_by(entries.c.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    op.execute(holds.update().values(caller=sa.func.coalesce(placer, holds.c.subject)))
    with op.batch_alter_table(_HOLDS) as batch:
        batch.alter_column("caller", existing_type=ExactText(), nullable=False)
        batch.drop_constraint("pk_tokenplans_holds", type_="primary")
        batch.create_primary_key("pk_tokenplans_holds", ["subject", "caller", "hold_id"])


def downgrade() -> None:
    # Two callers' holds may share an id now: keep one per (subject, id), the subject's
    # own first, as the older schema can hold only one.
    with op.batch_alter_table(_HOLDS) as batch:
        batch.drop_constraint("pk_tokenplans_holds", type_="primary")
    op.execute(
        sa.text(
            "DELETE FROM tokenplans_holds WHERE caller <> subject AND EXISTS ("
            "SELECT 1 FROM (SELECT subject, hold_id FROM tokenplans_holds "
            "WHERE caller = subject) AS own "
            "WHERE own.subject = tokenplans_holds.subject "
            "AND own.hold_id = tokenplans_holds.hold_id)"
        )
    )
    with op.batch_alter_table(_HOLDS) as batch:
        batch.create_primary_key("pk_tokenplans_holds", ["subject", "hold_id"])
        batch.drop_column("request")
        batch.drop_column("caller")
