"""``SqlAccountStore``: the core's :class:`~tokenplans.ports.AccountStore` and
:class:`~tokenplans.ports.PaymentStore` on SQLAlchemy Core.

The commit is a compare-and-write in one transaction: a conditional
``UPDATE tokenplans_accounts ... WHERE subject = :s AND version = :expected`` (or an
``INSERT`` when no account is expected), then the ledger entries and the commit's
records, each by its kind's writer (:func:`_write_record`). Whoever loses a race finds
the guard false (0 rows) or a unique key taken, and gets :class:`WriteConflictError`
with the transaction rolled back, so it wrote nothing; the service decides again on a
fresh read. The guard is evaluated by the database on the latest committed row
(PostgreSQL re-checks it after waiting for the row lock; InnoDB's UPDATE is a locking
read; SQLite writers are serialised by ``BEGIN IMMEDIATE``), which is why this is
race-free at the default isolation levels where a read-then-write is not.

The services make each attempt of a change inside :meth:`SqlAccountStore.locked`: one
transaction that starts by locking the account's row (``SELECT ... FOR UPDATE``; SQLite's
``BEGIN IMMEDIATE`` holds the write lock already), so the writers of a hot account queue
on the lock instead of all deciding on one snapshot and all but one retrying. The
compare-and-write above stays inside it: the lock spares retries, it is not what makes
a commit safe.

Database errors become core errors in one place, :func:`_translate`: key collisions,
deadlocks and serialization failures are write conflicts (retried by the service);
lost connections and unreachable servers are :class:`StorageUnavailableError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import attrs
from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    Table,
    bindparam,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc

from tokenplans import Account, EntryKind, ModelUsage, PricedCall, Usage
from tokenplans.ports import (
    Commit,
    DebitReceipt,
    HandledEvent,
    Hold,
    HoldStatus,
    HoldWrite,
    LedgerEntry,
    Payment,
    PaymentStatus,
    Record,
    StorageUnavailableError,
    WriteConflictError,
)

from .engine import WRITE_OPTION
from .migrate import schema_problem
from .schema import (
    accounts,
    debit_receipts,
    holds,
    ledger_entries,
    metadata,
    payment_events,
    payments,
)

T = TypeVar("T")


def _read_one_row(table: Table) -> Select[Any]:
    return select(literal(1)).select_from(table).limit(1)


#: Readiness's probe: at most one row of every table, in one statement.
_READ_EVERY_TABLE = select(
    *(_read_one_row(table).scalar_subquery().label(table.name) for table in metadata.sorted_tables)
)

#: Unique-key violations: PostgreSQL SQLSTATE, MySQL error numbers, SQLite error names.
_UNIQUE_VIOLATIONS = frozenset(
    {"23505", 1062, 1586, "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"}
)
#: Lost races the database resolved by aborting us: serialization failure, deadlock,
#: lock wait timeout. The transaction is gone; deciding again is safe.
_RACES_LOST = frozenset({"40001", "40P01", 1213, 1205})


class SqlAccountStore:
    """Accounts, ledgers, receipts and payments in the ``tokenplans_`` tables of ``engine``:
    one class for both storage ports, since a confirmed payment commits with its account.

    Thread-safe (the engine's pool hands each call its own connection); create the
    schema first with :func:`tokenplans_adapters.sql.upgrade_schema`.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Its busy handler makes waiting writers sleep
        # in growing steps (up to 100 ms), so under contention a write can wait long
        # after the lock is free; queueing this process's writers on a lock of our own
        # hands the write lock over at once. Other processes still queue on busy_timeout.
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        self._schema_current = False
        # The transaction this thread holds inside ``locked``, if any.
        self._local = threading.local()
        # psycopg opens a transaction with a round trip of its own (BEGIN) and the pool
        # ends it with another (ROLLBACK): on PostgreSQL reads run in autocommit, one
        # statement each, at the READ COMMITTED they would see anyway. (PyMySQL would
        # pay two round trips to switch autocommit instead, and SQLite sends no BEGIN
        # for a read: both read on the engine as it is.)
        self._reader: Engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )

    # -- health --------------------------------------------------------------------

    def check_ready(self) -> str | None:
        """``None`` when the database answers, its schema is at the revision this code
        expects and every table it serves from can be read; else the reason it is not
        ready (schema missing or at another revision, a table missing or unreadable).
        Raises :class:`StorageUnavailableError` when the database does not answer.

        Readiness is polled, so once the schema was found current each check is one
        statement reading at most one row of each table (migrations run before a
        deployment serves, not under a running server; a table dropped or locked away
        from under it is what the statement still catches).
        """
        if not self._schema_current:
            problem = self._read(schema_problem)
            if problem is not None:
                return problem
            self._schema_current = True
        return self._unreadable_table()

    def _unreadable_table(self) -> str | None:
        """``None`` when one row (or none) of each table can be read, else which table
        cannot; :class:`StorageUnavailableError` when the database does not answer."""
        try:
            self._read(lambda conn: conn.execute(_READ_EVERY_TABLE).all())
            return None
        except (StorageUnavailableError, sa_exc.DBAPIError):
            self.ping()  # down, rather than a table gone: raises
        for table in metadata.sorted_tables:
            probe = _read_one_row(table)
            try:
                self._read(lambda conn: conn.execute(probe).all())  # noqa: B023 - called at once
            except (StorageUnavailableError, sa_exc.DBAPIError):
                # The driver's words stay in the log (the readiness route logs the
                # reason); they may name the database's users and hosts.
                return f"table {table.name} is missing or cannot be read"
        return None

    def ping(self) -> None:
        """Round-trip to the database, or :class:`StorageUnavailableError` (readiness)."""
        self._read(lambda conn: conn.execute(text("SELECT 1")).scalar_one())

    # -- accounts ------------------------------------------------------------------

    @contextmanager
    def locked(self, subject: str) -> Iterator[None]:
        """One write transaction holding ``subject``'s row lock (``SELECT ... FOR
        UPDATE``; on SQLite, ``BEGIN IMMEDIATE`` already holds the database's write lock)
        in which this thread's calls on the store run, committed at the end of the block:
        the optional row-locking capability the services look for. The locked row is the
        first :meth:`load` of the subject in the block, so deciding costs no extra read."""
        if self._held() is not None:
            raise RuntimeError("SqlAccountStore.locked blocks do not nest")
        with self._write() as conn:
            row = conn.execute(_LOCK_ACCOUNT, {"subject": subject}).first()
            self._local.held = _Held(conn, subject, None if row is None else _account_from_row(row))
            try:
                yield
            finally:
                self._local.held = None

    def _held(self) -> _Held | None:
        held: _Held | None = getattr(self._local, "held", None)
        return held

    def load(self, subject: str) -> Account | None:
        held = self._held()
        if held is not None and held.subject == subject and not held.loaded:
            held.loaded = True
            return held.account

        def query(conn: Connection) -> Account | None:
            row = conn.execute(_LOAD_ACCOUNT, {"subject": subject}).first()
            return None if row is None else _account_from_row(row)

        return self._read(query)

    def commit(self, commit: Commit) -> None:
        account = commit.account
        values = _account_values(account)
        with self._write() as conn:
            if commit.expected_version == 0:
                # A concurrent creator makes this a unique violation: a lost race.
                conn.execute(_INSERT_ACCOUNT, {"subject": account.subject, **values})
            else:
                # The compare-and-write. MySQL dialects connect with CLIENT.FOUND_ROWS, so
                # rowcount counts matched rows there too (and version always changes).
                result = conn.execute(
                    _UPDATE_ACCOUNT,
                    {"b_subject": account.subject, "b_expected": commit.expected_version, **values},
                )
                if result.rowcount != 1:
                    raise WriteConflictError(f"account {account.subject!r} changed since the read")
            if commit.entries:
                conn.execute(_INSERT_ENTRIES, [_entry_values(e) for e in commit.entries])
            for record in commit.records:
                _write_record(conn, record)

    def find_receipt(self, subject: str, caller: str, idempotency_key: str) -> DebitReceipt | None:
        def query(conn: Connection) -> DebitReceipt | None:
            row = conn.execute(
                _FIND_RECEIPT, {"subject": subject, "caller": caller, "key": idempotency_key}
            ).first()
            if row is None:
                return None
            # A replay: the usage is the snapshot after the debit's entry, one primary-key
            # read of the ledger (written in the receipt's own transaction, so it exists).
            entry = conn.execute(_ENTRY_AT, {"subject": subject, "version": row.version}).one()
            return _receipt_from_row(row, _entry_from_row(entry))

        return self._read(query)

    def history(
        self, subject: str, *, before_version: int | None = None, limit: int = 50
    ) -> Sequence[LedgerEntry]:
        # Keyset pagination on the primary key (subject, version): each page is one index
        # range scan, and a cursor keeps naming the same entries while new ones arrive.
        query = select(ledger_entries).where(ledger_entries.c.subject == subject)
        if before_version is not None:
            query = query.where(ledger_entries.c.version < before_version)
        query = query.order_by(ledger_entries.c.version.desc()).limit(max(0, limit))
        return self._read(lambda conn: [_entry_from_row(row) for row in conn.execute(query)])

    # -- holds ---------------------------------------------------------------------

    def open_holds(self, subject: str) -> Sequence[Hold]:
        return self._read(
            lambda conn: [
                _hold_from_row(row) for row in conn.execute(_OPEN_HOLDS, {"subject": subject})
            ]
        )

    def find_hold(self, subject: str, hold_id: str, *, caller: str | None = None) -> Hold | None:
        key = {"subject": subject, "caller": subject if caller is None else caller}

        def read(conn: Connection) -> Hold | None:
            row = conn.execute(_FIND_HOLD, {**key, "hold_id": hold_id}).first()
            return None if row is None else _hold_from_row(row)

        return self._read(read)

    def subjects_with_expired_holds(
        self, now: datetime, *, limit: int, after: str | None = None
    ) -> Sequence[str]:
        # The (status, expires_at) index: only the open holds past their expiry are read.
        due = [holds.c.status == HoldStatus.OPEN.value, holds.c.expires_at <= now]
        if after is not None:
            due.append(holds.c.subject > after)
        query = (
            select(holds.c.subject)
            .where(*due)
            .group_by(holds.c.subject)
            .order_by(holds.c.subject)
            .limit(max(0, limit))
        )
        return self._read(lambda conn: list(conn.execute(query).scalars()))

    # -- payments ------------------------------------------------------------------

    def add_payment(self, payment: Payment) -> None:
        with self._write() as conn:
            conn.execute(insert(payments).values(**_payment_values(payment)))

    def find_payment(self, order_id: str) -> Payment | None:
        def query(conn: Connection) -> Payment | None:
            row = conn.execute(select(payments).where(payments.c.order_id == order_id)).first()
            return None if row is None else _payment_from_row(row)

        return self._read(query)

    def payments_of(self, subject: str, *, limit: int = 100) -> Sequence[Payment]:
        query = (
            select(payments)
            .where(payments.c.subject == subject)
            .order_by(payments.c.created_at.desc(), payments.c.id.desc())
            .limit(max(0, limit))
        )
        return self._read(lambda conn: [_payment_from_row(row) for row in conn.execute(query)])

    def update_payment(
        self, payment: Payment, *, expected_status: PaymentStatus, event_id: str | None = None
    ) -> None:
        with self._write() as conn:
            result = conn.execute(
                update(payments)
                .where(payments.c.id == payment.id, payments.c.status == expected_status.value)
                .values(**_payment_values(payment))
            )
            if result.rowcount != 1:
                raise WriteConflictError(f"payment {payment.id!r} changed since the read")
            if event_id is not None:
                _mark_event(conn, HandledEvent(event_id))

    def event_seen(self, event_id: str) -> bool:
        query = select(payment_events.c.event_id).where(payment_events.c.event_id == event_id)
        return self._read(lambda conn: conn.execute(query).first() is not None)

    # -- plumbing ------------------------------------------------------------------

    def _read(self, query: Callable[[Connection], T]) -> T:
        """Run a read-only ``query``; once more on a fresh connection if the pooled one
        turned out to be dead (reads are idempotent, so repeating one is safe). Inside
        :meth:`locked`, on its transaction's connection."""
        held = self._held()
        if held is not None:
            try:
                return query(held.conn)
            except sa_exc.DBAPIError as error:
                _raise_translated(error)
        for attempt in range(2):
            try:
                with self._reader.connect() as conn:
                    return query(conn)
            except sa_exc.DBAPIError as error:
                if attempt == 0 and error.connection_invalidated:
                    continue
                _raise_translated(error, reading=True)
            except sa_exc.TimeoutError as error:
                raise StorageUnavailableError(f"no database connection free: {error}") from error
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite), rolled back on any error.
        Writes are never retried here: after a lost connection the outcome of a COMMIT is
        unknown, and only the caller (with its idempotency key) can safely try again.
        Inside :meth:`locked`, a part of its transaction."""
        held = self._held()
        if held is not None:
            try:
                yield held.conn
            except sa_exc.DBAPIError as error:
                _raise_translated(error)
            return
        try:
            with self._write_lock, self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except sa_exc.DBAPIError as error:
            _raise_translated(error)
        except sa_exc.TimeoutError as error:
            raise StorageUnavailableError(f"no database connection free: {error}") from error


@attrs.define
class _Held:
    """A thread's transaction inside :meth:`SqlAccountStore.locked`: its connection, and
    the locked row (read at the lock, handed to the first load)."""

    conn: Connection
    subject: str
    account: Account | None
    loaded: bool = False


# The hot paths' statements, built once (SQLAlchemy caches their compiled forms, but
# building and hashing a select() on every call costs more than running it on SQLite).
_LOAD_ACCOUNT = select(accounts).where(accounts.c.subject == bindparam("subject"))
_LOCK_ACCOUNT = _LOAD_ACCOUNT.with_for_update()
_INSERT_ACCOUNT = insert(accounts)
_UPDATE_ACCOUNT = update(accounts).where(
    accounts.c.subject == bindparam("b_subject"), accounts.c.version == bindparam("b_expected")
)
_INSERT_ENTRIES = insert(ledger_entries)
_FIND_RECEIPT = select(debit_receipts).where(
    debit_receipts.c.subject == bindparam("subject"),
    debit_receipts.c.caller == bindparam("caller"),
    debit_receipts.c.idempotency_key == bindparam("key"),
)
_ENTRY_AT = select(ledger_entries).where(
    ledger_entries.c.subject == bindparam("subject"),
    ledger_entries.c.version == bindparam("version"),
)
_INSERT_RECEIPT = insert(debit_receipts)
#: One range scan of the (subject, status, created_at) index, already in order.
_OPEN_HOLDS = (
    select(holds)
    .where(holds.c.subject == bindparam("subject"), holds.c.status == HoldStatus.OPEN.value)
    .order_by(holds.c.created_at, holds.c.caller, holds.c.hold_id)
)
_FIND_HOLD = select(holds).where(
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


def _write_record(conn: Connection, record: Record) -> None:
    """Write one record of a commit by its kind's rule (see :class:`Commit`); a conflict
    is a unique violation, which rolls the whole commit back."""
    if isinstance(record, DebitReceipt):
        _insert_receipt(conn, record)
    elif isinstance(record, Payment):
        _upsert_payment(conn, record)
    elif isinstance(record, HoldWrite):
        _write_hold(conn, record)
    else:
        _mark_event(conn, record)


def _write_hold(conn: Connection, write: HoldWrite) -> None:
    """A new hold is inserted (an id taken is a unique violation); a closing one replaces
    the stored row only while its status is still ``write.previous``."""
    values = _hold_values(write.hold)
    if write.previous is None:
        conn.execute(_INSERT_HOLD, values)
        return
    result = conn.execute(
        _CLOSE_HOLD,
        {
            "b_subject": write.hold.subject,
            "b_caller": write.hold.caller,
            "b_hold_id": write.hold.hold_id,
            "b_previous": write.previous.value,
            **values,
        },
    )
    if result.rowcount != 1:
        raise WriteConflictError(f"hold {write.hold.hold_id!r} changed since the read")


def _insert_receipt(conn: Connection, receipt: DebitReceipt) -> None:
    if receipt.idempotency_key is not None:
        conn.execute(_INSERT_RECEIPT, _receipt_values(receipt))


def _mark_event(conn: Connection, event: HandledEvent) -> None:
    conn.execute(insert(payment_events).values(event_id=event.event_id))


def _upsert_payment(conn: Connection, payment: Payment) -> None:
    # Portable upsert: the account's compare-and-write above already serialises writers
    # of this subject, so update-then-insert cannot race with itself; a racing
    # add_payment shows up as a unique violation, i.e. a write conflict.
    values = _payment_values(payment)
    result = conn.execute(update(payments).where(payments.c.id == payment.id).values(**values))
    if result.rowcount == 0:
        conn.execute(insert(payments).values(**values))


def _error_code(error: sa_exc.DBAPIError) -> object:
    orig = error.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):  # PyMySQL: (errno, message); its sqlstate is coarse
        return args[0]
    for attribute in ("sqlstate", "sqlite_errorname"):  # psycopg, sqlite3
        code = getattr(orig, attribute, None)
        if code is not None:
            return code
    return None


def _raise_translated(error: sa_exc.DBAPIError, *, reading: bool = False) -> NoReturn:
    translated = _translate(error, reading=reading)
    if translated is error:
        raise error
    raise translated from error


def _translate(error: sa_exc.DBAPIError, *, reading: bool = False) -> Exception:
    """The core error for a database error; anything unexpected (a bug: bad SQL, a value
    out of range) is returned as it is, to surface loudly rather than be retried.

    A read has no race to lose (only a commit can be decided again), so an abort of a
    read means the database could not serve it: on a Galera node cut off from the
    cluster, the wait for the cluster's latest commits (``wsrep_sync_wait``) ends in a
    lock wait timeout."""
    code = _error_code(error)
    if isinstance(error, sa_exc.IntegrityError) and code in _UNIQUE_VIOLATIONS:
        return WriteConflictError(f"a unique key is already taken: {error.orig}")
    if code in _RACES_LOST:
        if reading:
            return StorageUnavailableError(f"the database could not serve a read: {error.orig}")
        return WriteConflictError(f"the database aborted a lost race: {error.orig}")
    if error.connection_invalidated or isinstance(
        error, sa_exc.OperationalError | sa_exc.InterfaceError
    ):
        return StorageUnavailableError(f"database unavailable: {error.orig}")
    return error


# -- rows <-> core values ----------------------------------------------------------------


#: The snapshot's fields, read from the value: a new field on Account is a new column
#: (schema + migration), not an edit here.
_ACCOUNT_FIELDS = tuple(field.name for field in attrs.fields(Account))
_PAYMENT_FIELDS = tuple(field.name for field in attrs.fields(Payment))
#: A hold's stored fields: all but ``replayed`` and ``priced``, which belong to one answer.
_HOLD_FIELDS = tuple(
    field.name for field in attrs.fields(Hold) if field.name not in ("replayed", "priced")
)


def _account_values(account: Account) -> dict[str, Any]:
    return {name: getattr(account, name) for name in _ACCOUNT_FIELDS if name != "subject"}


def _account_from_row(row: Row[Any] | Mapping[Any, Any]) -> Account:
    m = row._mapping if isinstance(row, Row) else row
    return Account(**{name: m[name] for name in _ACCOUNT_FIELDS})


def _entry_values(entry: LedgerEntry) -> dict[str, Any]:
    # The snapshot after the entry, column for column, then the entry's own facts.
    return {
        "subject": entry.after.subject,
        **_account_values(entry.after),
        **{name: getattr(entry, name) for name in _ENTRY_FACTS},
        **_priced_values(entry.priced),
        "kind": entry.kind.value,
    }


#: An entry's own columns: every LedgerEntry field but the snapshot after it and the
#: priced call (columns of its own, below).
_ENTRY_FACTS = tuple(
    field.name for field in attrs.fields(LedgerEntry) if field.name not in ("after", "priced")
)


def _entry_from_row(row: Row[Any]) -> LedgerEntry:
    m = row._mapping
    facts = {name: m[name] for name in _ENTRY_FACTS}
    return LedgerEntry(
        **{**facts, "kind": EntryKind(m["kind"])},
        after=_account_from_row(m),
        priced=_priced_from_row(m),
    )


# A priced entry's call, one column per field of its usage, then credits and version:
# all NULL on an entry that was not priced.
_USAGE_FIELDS = tuple(field.name for field in attrs.fields(ModelUsage))
_PRICED_COLUMNS = (*_USAGE_FIELDS, "credits", "price_version")


def _priced_values(priced: PricedCall | None) -> dict[str, Any]:
    if priced is None:
        return dict.fromkeys(_PRICED_COLUMNS)
    return {
        **{name: getattr(priced.usage, name) for name in _USAGE_FIELDS},
        "credits": priced.credits,
        "price_version": priced.price_version,
    }


def _priced_from_row(m: Mapping[Any, Any]) -> PricedCall | None:
    if m["model"] is None:
        return None
    return PricedCall(
        ModelUsage(**{name: m[name] for name in _USAGE_FIELDS}),
        credits=m["credits"],
        price_version=m["price_version"],
    )


#: A receipt's own columns: every DebitReceipt field but the usage and priced call (the
#: ledger's) and ``replayed`` (an answer's, not a stored fact).
_RECEIPT_FIELDS = tuple(
    field.name
    for field in attrs.fields(DebitReceipt)
    if field.name not in ("usage", "priced", "replayed")
)


def _receipt_values(receipt: DebitReceipt) -> dict[str, Any]:
    return {name: getattr(receipt, name) for name in _RECEIPT_FIELDS}


def _receipt_from_row(row: Row[Any], entry: LedgerEntry) -> DebitReceipt:
    m = row._mapping
    return DebitReceipt(
        **{name: m[name] for name in _RECEIPT_FIELDS},
        usage=Usage.of(entry.after),
        priced=entry.priced,
    )


def _payment_values(payment: Payment) -> dict[str, Any]:
    values = {name: getattr(payment, name) for name in _PAYMENT_FIELDS}
    return {**values, "status": payment.status.value}


def _payment_from_row(row: Row[Any]) -> Payment:
    m = row._mapping
    return Payment(
        **{**{name: m[name] for name in _PAYMENT_FIELDS}, "status": PaymentStatus(m["status"])}
    )


def _hold_values(hold: Hold) -> dict[str, Any]:
    values = {name: getattr(hold, name) for name in _HOLD_FIELDS}
    return {**values, "status": hold.status.value}


def _hold_from_row(row: Row[Any]) -> Hold:
    m = row._mapping
    values = {name: m[name] for name in _HOLD_FIELDS}
    return Hold(**{**values, "status": HoldStatus(m["status"]), "late": bool(m["late"])})
