"""Zero-credit holds: the open holds of 0 credits earlier versions let a priced reserve
place are closed as expired.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

A hold now costs at least one credit, so an account holding nothing has no open hold and
its holds are read only when ``token_held > 0``. Open holds of 0 written before would
escape that read: never counted against the open-hold cap, never expired, found again
by every sweep. They held nothing, so closing them changes no account: one past its
expiry is expired at its expiry instant, one not yet is expired now (a late settle of
it is still accepted and charged, as for any expired hold). No ledger entry is written:
an expiry of 0 moves no counter. Nothing to undo on a downgrade.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from tokenplans_adapters.sql.schema import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    holds = sa.table(
        "tokenplans_holds",
        sa.column("amount", sa.BigInteger()),
        sa.column("status", sa.String(16)),
        sa.column("expires_at", UtcDateTime()),
        sa.column("closed_at", UtcDateTime()),
    )
    now = datetime.now(UTC)
    zero = (holds.c.status == "open", holds.c.amount == 0)
    op.execute(
        holds.update()
        .where(*zero, holds.c.expires_at <= now)
        .values(status="expired", closed_at=holds.c.expires_at)
    )
    op.execute(holds.update().where(*zero).values(status="expired", closed_at=now, expires_at=now))


def downgrade() -> None:
    pass
