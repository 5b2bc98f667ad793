"""The store's statements, built once, and the writers of a commit's records.

SQLAlchemy caches compiled forms, but building and hashing a ``select()`` on every call
costs more than running it on SQLite: the hot paths' statements are module constants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    Table,
    bindparam,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from tokenplans.ports import (
    DailyUsage,
    DebitReceipt,
    Event,
    HandledEvent,
    HoldStatus,
    HoldWrite,
    LedgerEntry,
    Payment,
    PaymentStatus,
    Record,
    WriteConflictError,
    daily_usage,
)

from .direct import direct
from .outbox import insert_event
from .rows import hold_values, payment_values, receipt_values
from .schema import (
    UtcDateTime,
    accounts,
    debit_receipts,
    holds,
    ledger_entries,
    metadata,
    payment_events,
    payments,
    usage_daily,
)


def read_one_row(table: Table) -> Select[Any]:
    return select(literal(1)).select_from(table).limit(1)


#: Readiness's probe: at most one row of every table, in one statement.
READ_EVERY_TABLE = select(
    *(read_one_row(table).scalar_subquery().label(table.name) for table in metadata.sorted_tables)
)

LOAD_ACCOUNT = select(accounts).where(accounts.c.subject == bindparam("subject"))

#: The instant of the account's latest entry (its version's), read with the account: a
#: primary-key lookup correlated with the row.
_LAST_ENTRY_AT = (
    select(ledger_entries.c.at)
    .where(
        ledger_entries.c.subject == accounts.c.subject,
        ledger_entries.c.version == accounts.c.version,
    )
    .scalar_subquery()
)
#: The labels of the columns a stamped load adds to the account's.
LAST_ENTRY_AT = "tp_last_entry_at"
DATABASE_NOW = "tp_database_now"


def database_now(dialect: str) -> ColumnElement[Any] | None:
    """The database's current UTC time as an expression, or ``None`` on SQLite (whose
    time is the reading process's clock: the store reads that instead).
    PostgreSQL's ``clock_timestamp()`` is the time the row is read (after any wait on
    its lock, unlike ``now()``, the transaction's start); MySQL/MariaDB's
    ``UTC_TIMESTAMP(6)`` is the statement's start."""
    if dialect == "postgresql":
        return type_coerce(func.clock_timestamp(), UtcDateTime())
    if dialect in ("mysql", "mariadb"):
        return type_coerce(func.utc_timestamp(6), UtcDateTime())
    return None


def stamped_load(dialect: str, *, database_clock: bool, lock: bool) -> Select[Any]:
    """The account's row with the instant of its last entry and, with
    ``database_clock``, the database's time (:func:`database_now`), in one statement;
    ``lock`` takes the row's lock (``FOR UPDATE``, which does not lock the ledger row
    the subquery reads)."""
    columns: list[ColumnElement[Any]] = [
        type_coerce(_LAST_ENTRY_AT, UtcDateTime()).label(LAST_ENTRY_AT)
    ]
    now = database_now(dialect) if database_clock else None
    if now is not None:
        columns.append(now.label(DATABASE_NOW))
    query = LOAD_ACCOUNT.add_columns(*columns)
    return query.with_for_update() if lock else query


def read_database_now(dialect: str) -> Select[Any] | None:
    """``SELECT`` of the database's time alone, or ``None`` on SQLite."""
    now = database_now(dialect)
    return None if now is None else select(now.label(DATABASE_NOW))


INSERT_ACCOUNT = insert(accounts)
#: The compare-and-write: the row is replaced only while its version is the expected one.
UPDATE_ACCOUNT = update(accounts).where(
    accounts.c.subject == bindparam("b_subject"), accounts.c.version == bindparam("b_expected")
)
INSERT_ENTRIES = insert(ledger_entries)
FIND_RECEIPT = select(debit_receipts).where(
    debit_receipts.c.subject == bindparam("subject"),
    debit_receipts.c.caller == bindparam("caller"),
    debit_receipts.c.idempotency_key == bindparam("key"),
)
ENTRY_AT = select(ledger_entries).where(
    ledger_entries.c.subject == bindparam("subject"),
    ledger_entries.c.version == bindparam("version"),
)
_INSERT_RECEIPT = insert(debit_receipts)
#: One range scan of the (subject, status, created_at) index, already in order.
OPEN_HOLDS = (
    select(holds)
    .where(holds.c.subject == bindparam("subject"), holds.c.status == HoldStatus.OPEN.value)
    .order_by(holds.c.created_at, holds.c.caller, holds.c.hold_id)
)
FIND_HOLD = select(holds).where(
    holds.c.subject == bindparam("subject"),
    holds.c.caller == bindparam("caller"),
    holds.c.hold_id == bindparam("hold_id"),
)
_INSERT_HOLD = insert(holds)
#: A hold's row replaced only while its status is still the one the decision read.
_CLOSE_HOLD = update(holds).where(
    holds.c.subject == bindparam("b_subject"),
    holds.c.caller == bindparam("b_caller"),
    holds.c.hold_id == bindparam("b_hold_id"),
    holds.c.status == bindparam("b_previous"),
)


#: A check of a write's outcome, made once the database has answered it: the writes
#: of a commit may be sent together (:func:`.direct.pipelined`), their answers read after.
Check = Callable[[], None]


#: The records :func:`write_record` writes on the DB-API (:mod:`.direct`); the others go
#: through SQLAlchemy and need each statement's answer as it comes.
DIRECT_RECORDS = (HoldWrite, DebitReceipt)


def write_record(conn: Connection, record: Record) -> Check | None:
    """Write one record of a commit by its kind's rule (see :class:`Commit`); a conflict
    is a unique violation, which rolls the whole commit back, or a check returned to run
    once the database answered (a hold that changed since the read)."""
    if isinstance(record, DebitReceipt):
        _insert_receipt(conn, record)
    elif isinstance(record, Payment):
        _upsert_payment(conn, record)
    elif isinstance(record, HoldWrite):
        return _write_hold(conn, record)
    elif isinstance(record, Event):
        insert_event(conn, record)
    else:
        mark_event(conn, record)
    return None


def _write_hold(conn: Connection, write: HoldWrite) -> Check | None:
    """A new hold is inserted (an id taken is a unique violation); a closing one replaces
    the stored row only while its status is still ``write.previous``."""
    values = hold_values(write.hold)
    if write.previous is None:
        direct(_INSERT_HOLD, conn.dialect, tuple(values)).execute(conn, values)
        return None
    statement = direct(_CLOSE_HOLD, conn.dialect, tuple(values))
    cursor = statement.execute(
        conn,
        {
            "b_subject": write.hold.subject,
            "b_caller": write.hold.caller,
            "b_hold_id": write.hold.hold_id,
            "b_previous": write.previous.value,
            **values,
        },
    )
    return one_row(cursor, f"hold {write.hold.hold_id!r} changed since the read")


def one_row(cursor: Any, conflict: str) -> Check:
    """The check that the write run on ``cursor`` matched one row (else a lost race)."""

    def check() -> None:
        if cursor.rowcount != 1:
            raise WriteConflictError(conflict)

    return check


def _insert_receipt(conn: Connection, receipt: DebitReceipt) -> None:
    if receipt.idempotency_key is not None:
        values = receipt_values(receipt)
        direct(_INSERT_RECEIPT, conn.dialect, tuple(values)).execute(conn, values)


def mark_event(conn: Connection, event: HandledEvent) -> None:
    conn.execute(insert(payment_events).values(event_id=event.event_id))


def _upsert_payment(conn: Connection, payment: Payment) -> None:
    # Portable upsert: the account's compare-and-write already serialises writers of
    # this subject, so update-then-insert cannot race with itself; a racing add_payment
    # shows up as a unique violation, i.e. a write conflict. A refunded payment is never
    # replaced: the update matches nothing, and the insert of its id is that conflict.
    values = payment_values(payment)
    result = conn.execute(
        update(payments)
        .where(payments.c.id == payment.id, payments.c.status != PaymentStatus.REFUNDED.value)
        .values(**values)
    )
    if result.rowcount == 0:
        conn.execute(insert(payments).values(**values))


# -- the daily usage rollup ----------------------------------------------------------

#: The rollup's numbers: what an upsert adds to a stored row.
USAGE_COUNTS = tuple(
    column.name for column in usage_daily.columns if column.name not in ("subject", "day", "model")
)


def add_usage(conn: Connection, entries: Sequence[LedgerEntry]) -> None:
    """Add what a commit's ``entries`` spend to the daily rollup, in the commit's
    transaction: one upsert per (subject, day, model), in key order. The database adds
    to the stored numbers itself (``ON CONFLICT DO UPDATE`` on PostgreSQL and SQLite,
    ``ON DUPLICATE KEY UPDATE`` on MySQL/MariaDB), so two commits adding to one row
    never lose an addition."""
    rows = [usage_values(row) for row in daily_usage(entries)]
    if rows:
        upsert = direct(_upsert_usage(conn.dialect.name), conn.dialect, tuple(rows[0]))
        upsert.execute_many(conn, rows)


def usage_values(row: DailyUsage) -> dict[str, Any]:
    return {"subject": row.subject, "day": row.day, "model": row.model, **row.counts()}


@cache
def _upsert_usage(dialect: str) -> Insert:
    table = usage_daily
    if dialect in ("mysql", "mariadb"):
        mine = mysql.insert(table)
        return mine.on_duplicate_key_update(
            {name: table.c[name] + mine.inserted[name] for name in USAGE_COUNTS}
        )
    if dialect not in ("postgresql", "sqlite"):
        raise ValueError(f"no rollup upsert for the {dialect} dialect")
    theirs = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return theirs.on_conflict_do_update(
        index_elements=[table.c.subject, table.c.day, table.c.model],
        set_={name: table.c[name] + theirs.excluded[name] for name in USAGE_COUNTS},
    )
