"""The tables, as explicit SQLAlchemy Core ``Table`` objects, and two portable column types.

Every table is prefixed ``tokenplans_`` so the schema can live in a host application's
database; :data:`metadata` is public so the host's own Alembic can include it. Integers
are BIGINT everywhere (quotas are 64-bit in the core's rules).

Two types exist because the three databases disagree where the core cannot:

* :class:`ExactText` - identifiers (subjects, idempotency keys, payment ids) must compare
  exactly. MySQL/MariaDB's usual collations fold case and pad trailing spaces, so there
  ``"alice"``, ``"Alice"`` and ``"alice "`` would be one account; we store those columns
  as ``VARBINARY`` of the UTF-8 bytes instead. Elsewhere they are ``VARCHAR`` (collation
  ``"C"`` on PostgreSQL, so ordering is by code point as in the in-memory store).
* :class:`UtcDateTime` - the core only accepts aware UTC datetimes with microseconds.
  PostgreSQL gets ``timestamptz``; MySQL ``DATETIME(6)`` (plain ``DATETIME`` drops the
  microseconds) and SQLite a naive text timestamp, both holding UTC, converted at the edge.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeEngine

from tokenplans import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_MODEL_LENGTH,
    MAX_PRICE_VERSION_LENGTH,
    MAX_SUBJECT_LENGTH,
)

#: Constraint names are fixed so migrations can refer to them on every dialect.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

_MYSQL = ("mysql", "mariadb")
#: The longest subject, key or id the core accepts, in characters.
ID_LENGTH = max(MAX_SUBJECT_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH)
#: Event and webhook endpoint ids (``evt_`` / ``wh_`` and 26 characters).
EVENT_ID_LENGTH = 64
_UTF8_MAX_BYTES = 4


class ExactText(TypeDecorator[str]):
    """Text compared byte for byte on every dialect (``VARBINARY`` on MySQL/MariaDB)."""

    impl = String
    cache_ok = True

    def __init__(self, length: int = ID_LENGTH) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.VARBINARY(self.length * _UTF8_MAX_BYTES))
        if dialect.name == "postgresql":
            # "C": code-point order and byte equality, whatever the database's locale.
            return dialect.type_descriptor(String(self.length, collation="C"))
        return dialect.type_descriptor(String(self.length))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is not None and dialect.name in _MYSQL:
            return value.encode("utf-8")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:  # noqa: ARG002
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value).decode("utf-8")
        return value  # type: ignore[no-any-return]


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime with microseconds, stored as UTC on every dialect."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"refusing to store naive datetime {value!r}")
        utc = value.astimezone(UTC)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def snapshot_columns() -> list[Column[Any]]:
    """The account snapshot's columns, one per :class:`tokenplans.Account` field but its
    key (``subject``, ``version``): the accounts table's row and the ledger's snapshot
    after each entry are the same columns, defined here once (a new snapshot field is a
    column here, plus a migration). New objects on every call, as each table needs."""
    return [
        Column("plan_id", String(64), nullable=False),
        Column("token_quota", BigInteger, nullable=False),
        Column("token_used", BigInteger, nullable=False),
        Column("period_start", UtcDateTime(), nullable=False),
        Column("period_end", UtcDateTime(), nullable=False),
        Column("plan_end_at", UtcDateTime(), nullable=True),
        Column("token_held", BigInteger, nullable=False, server_default="0"),
        # The account's credit lots beside its plan lot, as one JSON array (NULL for none:
        # an account with only its plan lot reads and writes what it did before lots).
        Column("lots", facts_type(), nullable=True),
    ]


def priced_columns() -> list[Column[Any]]:
    """The columns of a ledger entry's priced call (:class:`tokenplans.PricedCall`): its
    usage's fields, then ``credits`` and ``price_version``; nullable, as an entry that
    was not priced has none."""
    return [
        Column("model", String(MAX_MODEL_LENGTH), nullable=True),
        Column("input_tokens", BigInteger, nullable=True),
        Column("output_tokens", BigInteger, nullable=True),
        Column("cache_read_tokens", BigInteger, nullable=True),
        Column("cache_write_tokens", BigInteger, nullable=True),
        Column("reasoning_tokens", BigInteger, nullable=True),
        Column("credits", BigInteger, nullable=True),
        Column("price_version", String(MAX_PRICE_VERSION_LENGTH), nullable=True),
    ]


def facts_type() -> TypeEngine[Any]:
    """A ledger entry's facts: JSON on every dialect (``json`` on PostgreSQL, ``JSON`` on
    MySQL/MariaDB, text on SQLite), SQL ``NULL`` for an entry without facts."""
    return JSON(none_as_null=True)


#: One row per subject: the current snapshot. Reading usage reads this row only.
accounts = Table(
    "tokenplans_accounts",
    metadata,
    Column("subject", ExactText(), primary_key=True),
    *snapshot_columns(),
    # The number of ledger entries behind the snapshot; the compare-and-write's guard.
    Column("version", BigInteger, nullable=False),
)

#: Append-only; the primary key (subject, version) is also the history pages' index.
ledger_entries = Table(
    "tokenplans_ledger_entries",
    metadata,
    Column("subject", ExactText(), primary_key=True),
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("quota_delta", BigInteger, nullable=False),
    Column("used_delta", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=True),
    Column("actor", ExactText(), nullable=True),
    Column("message", Text, nullable=False),
    # How far token_held moved (hold entries; 0 on the others).
    Column("held_delta", BigInteger, nullable=False, server_default="0"),
    # What only the entry's kind knows, as one JSON object (NULL for none): a debit's
    # idempotency key, a hold's id and overage, a payment's id. See LedgerEntry.facts.
    Column("facts", facts_type(), nullable=True),
    # A priced entry's model call (all NULL on the others): the model, its normalised
    # token counts, the credits charged or held for it and the prices' version.
    *priced_columns(),
    # The snapshot after this entry (its subject and version are the key above).
    *snapshot_columns(),
)

#: What a successful idempotent debit, grant or plan change returned; the key is unique
#: per subject and caller (the principal who sent it: the user itself, or an admin or back
#: end acting for it), whatever the request it was first used for (``request``).
debit_receipts = Table(
    "tokenplans_debit_receipts",
    metadata,
    Column("subject", ExactText(), primary_key=True),
    Column("caller", ExactText(), primary_key=True),
    Column("idempotency_key", ExactText(), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    # The debit's ledger entry (subject, version): its snapshot is the usage a replay
    # answers, read from there rather than copied here.
    Column("version", BigInteger, nullable=False),
    # What the key was first used for: "consume", "grant" or "set-plan PLAN[ reset-used]".
    Column("request", ExactText(), nullable=False),
)

#: Holds, keyed by subject, the caller who placed the hold and its id (ids are scoped to
#: both, like idempotency keys). The (subject, status, created_at) index makes reading an
#: account's open holds one range scan in order; (status, expires_at) finds the expired
#: ones for a sweep.
holds = Table(
    "tokenplans_holds",
    metadata,
    Column("subject", ExactText(), primary_key=True),
    Column("caller", ExactText(), primary_key=True),
    Column("hold_id", ExactText(), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("settled", BigInteger, nullable=True),
    Column("overage", BigInteger, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("closed_at", UtcDateTime(), nullable=True),
    # What was asked for beyond the amount (a digest of the estimated call); NULL for a
    # plain amount and for holds placed before it was recorded.
    Column("request", String(64), nullable=True),
    # The lots the held credits came from, as a JSON array of {lot_id, amount}; NULL when
    # they all came from the plan lot.
    Column("draws", facts_type(), nullable=True),
)
Index(None, holds.c.subject, holds.c.status, holds.c.created_at)
Index(None, holds.c.status, holds.c.expires_at)

payments = Table(
    "tokenplans_payments",
    metadata,
    Column("id", ExactText(), primary_key=True),
    Column("subject", ExactText(), nullable=False),
    Column("plan_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("order_id", ExactText(), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("gateway_payment_id", ExactText(), nullable=True),
    # The gateway that made the order (``razorpay``); only its proofs and webhooks confirm it.
    Column("provider", String(32), nullable=False),
    # The pack a payment buys (NULL: a plan's payment, whose plan_id names it; a pack's
    # payment has plan_id "").
    Column("pack_id", String(64), nullable=True),
)
Index(None, payments.c.subject, payments.c.created_at, payments.c.id)
# A refund that names only the provider's payment (Stripe's charge.refunded) finds ours.
Index(None, payments.c.gateway_payment_id)

#: Payment-provider events already handled (webhooks are delivered at least once).
payment_events = Table(
    "tokenplans_payment_events",
    metadata,
    Column("event_id", ExactText(), primary_key=True),
)

#: The daily usage rollup: per subject, UTC day and model (``""`` for debits and settles
#: of a plain amount), the credits spent, the calls (debits and settles) and their tokens
#: by kind. Every commit adds its spending entries to it in its own transaction, so a
#: report reads these rows, never the ledger (docs/reports.md documents the columns for
#: plain SQL). The primary key serves one subject's reports (a range of days); the
#: (day, subject) index serves every subject's (the top spenders).
usage_daily = Table(
    "tokenplans_usage_daily",
    metadata,
    Column("subject", ExactText(), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("model", ExactText(MAX_MODEL_LENGTH), primary_key=True),
    Column("credits", BigInteger, nullable=False),
    Column("calls", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
)
Index(None, usage_daily.c.day, usage_daily.c.subject)
#: The outbox (docs/events.md): each event appended in the transaction of the change that
#: emitted it, in ``seq`` order, and given its ``position`` in the feed (gap-free, in
#: commit order) when it is routed to the webhook endpoints.
events = Table(
    "tokenplans_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("event_id", ExactText(EVENT_ID_LENGTH), nullable=False, unique=True),
    Column("position", BigInteger, nullable=True, unique=True),
    Column("type", String(64), nullable=False),
    Column("subject", ExactText(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("data", JSON(), nullable=False),
)

#: One row (``id`` 1): the last position given, locked while events are routed.
outbox_state = Table(
    "tokenplans_outbox_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_position", BigInteger, nullable=False),
)

webhook_endpoints = Table(
    "tokenplans_webhook_endpoints",
    metadata,
    Column("id", ExactText(EVENT_ID_LENGTH), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("events", JSON(none_as_null=True), nullable=True),
    Column("description", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_at", UtcDateTime(), nullable=True),
    Column("failing_since", UtcDateTime(), nullable=True),
)

webhook_deliveries = Table(
    "tokenplans_webhook_deliveries",
    metadata,
    Column("endpoint_id", ExactText(EVENT_ID_LENGTH), primary_key=True),
    Column("event_id", ExactText(EVENT_ID_LENGTH), primary_key=True),
    Column("event_type", String(64), nullable=False),
    Column("subject", ExactText(), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("event_created_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", BigInteger, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_attempt_at", UtcDateTime(), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Column("lease_token", String(32), nullable=True),
    Column("leased_until", UtcDateTime(), nullable=True),
)
Index(None, webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at)
# Each endpoint and subject's oldest pending delivery (named: the generated name is
# longer than MySQL's 64 characters).
Index(
    "ix_tokenplans_webhook_deliveries_head",
    webhook_deliveries.c.endpoint_id,
    webhook_deliveries.c.subject,
    webhook_deliveries.c.status,
    webhook_deliveries.c.position,
)
Index(None, webhook_deliveries.c.endpoint_id, webhook_deliveries.c.position)
