"""Scope idempotency receipts to their caller: key (subject, caller, idempotency_key).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Before, a user and the back end acting for it shared one key space, so a user could
pre-claim a key its back end would use. A receipt now also records the principal who
sent the debit. Existing receipts get the caller that really sent them: the ``actor`` of
the ledger entry the debit wrote (same subject, same version), so a back end retrying a
debit it made before the upgrade is still answered with its first receipt and is not
charged twice. A receipt without its entry (none is expected) keeps its subject.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tokenplans_adapters.sql.schema import ExactText

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PK = "pk_tokenplans_debit_receipts"


def upgrade() -> None:
    with op.batch_alter_table("tokenplans_debit_receipts") as batch:
        batch.add_column(sa.Column("caller", ExactText(), nullable=True))
    op.execute(
        "UPDATE tokenplans_debit_receipts SET caller = COALESCE(("
        " SELECT e.actor FROM tokenplans_ledger_entries e"
        " WHERE e.subject = tokenplans_debit_receipts.subject"
        " AND e.version = tokenplans_debit_receipts.version), subject)"
    )
    with op.batch_alter_table("tokenplans_debit_receipts") as batch:
        batch.alter_column("caller", existing_type=ExactText(), nullable=False)
        batch.drop_constraint(_PK, type_="primary")
        batch.create_primary_key(_PK, ["subject", "caller", "idempotency_key"])


def downgrade() -> None:
    # Receipts of several callers for one key cannot all survive the narrower key: keep
    # the first debit made with it (the lowest version; versions are unique per subject).
    op.execute(
        "DELETE FROM tokenplans_debit_receipts WHERE EXISTS ("
        " SELECT 1 FROM (SELECT subject, idempotency_key, version"
        " FROM tokenplans_debit_receipts) earlier"
        " WHERE earlier.subject = tokenplans_debit_receipts.subject"
        " AND earlier.idempotency_key = tokenplans_debit_receipts.idempotency_key"
        " AND earlier.version < tokenplans_debit_receipts.version)"
    )
    with op.batch_alter_table("tokenplans_debit_receipts") as batch:
        batch.drop_constraint(_PK, type_="primary")
        batch.create_primary_key(_PK, ["subject", "idempotency_key"])
        batch.drop_column("caller")
