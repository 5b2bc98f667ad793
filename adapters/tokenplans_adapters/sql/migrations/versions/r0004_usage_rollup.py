"""Add the daily usage rollup, filled from the ledgers already stored.

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-05

``tokenplans_usage_daily`` holds, per subject, UTC day and model (``""`` for a debit or
settle of a plain amount), the credits spent, the number of debits and settles and their
tokens by kind; every commit adds to it from now on (docs/reports.md). The backfill sums
the existing ``debited`` and ``hold_settled`` entries in one ``INSERT ... SELECT``,
inside the upgrade's transaction (on PostgreSQL and SQLite; MySQL/MariaDB commit DDL
as they go, so there the table is created, then filled). Upgrade with the servers
stopped, as for any migration: a debit committed between the table's creation and the
backfill would be counted twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tokenplans_adapters.sql.schema import ExactText

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLE = "tokenplans_usage_daily"
_COUNTS = (
    "credits",
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
#: The UTC day of an entry's ``at`` on each dialect (stored as UTC on every one; SQLite
#: keeps it as text ``YYYY-MM-DD HH:MM:SS.ffffff`` and a date as ``YYYY-MM-DD``).
_DAY = {
    "postgresql": "CAST(at AT TIME ZONE 'UTC' AS DATE)",
    "sqlite": "substr(at, 1, 10)",
    "mysql": "DATE(at)",
    "mariadb": "DATE(at)",
}


def spending_by_day(dialect: str) -> str:
    """A ``SELECT`` of the rollup's rows as the stored ledgers sum to (its columns named
    and ordered as the table's): what the backfill inserts. Models are grouped byte for
    byte, as the rollup keys them: MySQL/MariaDB's collation of the ledger's ``model``
    column folds case (``gpt-4o`` and ``GPT-4o`` would be one group), so there they are
    grouped as binary."""
    day = _DAY[dialect]
    model = "COALESCE(model, '')"
    if dialect in ("mysql", "mariadb"):
        model = f"CAST({model} AS BINARY)"
    tokens = ", ".join(f"SUM(COALESCE({name}, 0)) AS {name}" for name in _COUNTS[2:])
    return (
        f"SELECT subject, {day} AS day, {model} AS model, "  # noqa: S608 - constants only
        f"SUM(COALESCE(amount, 0)) AS credits, COUNT(*) AS calls, {tokens} "
        "FROM tokenplans_ledger_entries WHERE kind IN ('debited', 'hold_settled') "
        f"GROUP BY subject, {day}, {model}"
    )


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("subject", ExactText(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("model", ExactText(200), nullable=False),
        *(sa.Column[object](name, sa.BigInteger(), nullable=False) for name in _COUNTS),
        sa.PrimaryKeyConstraint("subject", "day", "model", name="pk_tokenplans_usage_daily"),
    )
    op.create_index("ix_tokenplans_usage_daily_day_subject", _TABLE, ["day", "subject"])
    columns = ", ".join(("subject", "day", "model", *_COUNTS))
    dialect = op.get_bind().dialect.name
    op.execute(sa.text(f"INSERT INTO {_TABLE} ({columns}) {spending_by_day(dialect)}"))


def downgrade() -> None:
    op.drop_index("ix_tokenplans_usage_daily_day_subject", _TABLE)
    op.drop_table(_TABLE)
