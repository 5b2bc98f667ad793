"""``SqlAccountStore``: the core's :class:`~tokenplans.ports.AccountStore` and
:class:`~tokenplans.ports.PaymentStore` on SQLAlchemy Core.

The commit is a compare-and-write in one transaction: a conditional
``UPDATE tokenplans_accounts ... WHERE subject = :s AND version = :expected`` (or an
``INSERT`` when no account is expected), then the ledger entries, what they spend added
to the daily usage rollup (:func:`.statements.add_usage`, an upsert), and the commit's
records, each by its kind's writer (:func:`.statements.write_record`). Whoever loses a race finds
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

Every account is read with the database's time (:meth:`SqlAccountStore.load_stamped`,
the services' optional :class:`~tokenplans.ports.ClockedStore` capability) and the
instant of its last entry, in the same statement: every app server sharing the database
decides by one clock (``clock_source="database"``, the default). SQLite's file has one
host, whose clock every process using it reads: there the "database's time" is the
process's clock. ``clock_source="process"`` leaves the time to the service's
:class:`~tokenplans.ports.Clock` (a test's settable clock); the last entry's instant is
still read, so an account's entries stay in order of time.

This module is the store's plumbing and queries; its statements and record writers are
in :mod:`.statements`, rows <-> values in :mod:`.rows`, and database errors become core
errors in one place, :mod:`.errors`. The hot statements (a change's reads and writes, a
usage read) run on the DB-API cursor through :mod:`.direct`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

import attrs
from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, text, update
from sqlalchemy import exc as sa_exc

from tokenplans import Account, Spender, UsageRow
from tokenplans.ports import (
    Commit,
    DebitReceipt,
    Event,
    HandledEvent,
    Hold,
    HoldStatus,
    LedgerEntry,
    Outstanding,
    Payment,
    PaymentStatus,
    Stamped,
    StorageUnavailableError,
    WriteConflictError,
)

from .direct import DirectStatement, direct, pipelined
from .engine import WRITE_OPTION, full_disk
from .errors import raise_translated
from .migrate import schema_problem
from .outbox import SqlOutbox, insert_event
from .rows import (
    account_from_row,
    account_values,
    entry_from_row,
    entry_values,
    hold_from_row,
    payment_from_row,
    payment_values,
    receipt_from_row,
)
from .schema import (
    accounts,
    holds,
    ledger_entries,
    metadata,
    payment_events,
    payments,
    usage_daily,
)
from .statements import (
    DATABASE_NOW,
    DIRECT_RECORDS,
    ENTRY_AT,
    FIND_HOLD,
    FIND_RECEIPT,
    INSERT_ACCOUNT,
    INSERT_ENTRIES,
    LAST_ENTRY_AT,
    LOAD_ACCOUNT,
    OPEN_HOLDS,
    READ_EVERY_TABLE,
    UPDATE_ACCOUNT,
    USAGE_COUNTS,
    add_usage,
    mark_event,
    one_row,
    read_database_now,
    read_one_row,
    stamped_load,
    write_record,
)

T = TypeVar("T")

#: Whose clock dates the decisions on a store's accounts (see the module docstring).
ClockSource = Literal["database", "process"]


class SqlAccountStore(SqlOutbox):
    """Accounts, ledgers, receipts and payments in the ``tokenplans_`` tables of ``engine``:
    one class for both storage ports, since a confirmed payment commits with its account,
    and the outbox of events with its webhook deliveries (:class:`.outbox.SqlOutbox`).

    Thread-safe (the engine's pool hands each call its own connection); create the
    schema first with :func:`tokenplans_adapters.sql.upgrade_schema`.

    ``clock_source`` is whose time decides: ``"database"`` (the default) the database's,
    read with each account, so servers with skewed clocks agree on when a hold expires
    and a period ends; ``"process"`` the service's own :class:`~tokenplans.ports.Clock`
    (tests with a settable clock, a single server). Either way a decision is never dated
    before the account's last entry.
    """

    def __init__(self, engine: Engine, *, clock_source: ClockSource = "database") -> None:
        if clock_source not in ("database", "process"):
            raise ValueError(f"clock_source must be 'database' or 'process', not {clock_source!r}")
        self.engine = engine
        self.clock_source: ClockSource = clock_source
        dialect = engine.dialect.name
        self._dialect = dialect
        database_clock = clock_source == "database"
        # The hot reads, compiled once for this engine and run on the DB-API (.direct).
        self._load_stamped = DirectStatement(
            stamped_load(dialect, database_clock=database_clock, lock=False), engine.dialect
        )
        self._lock_stamped = DirectStatement(
            stamped_load(dialect, database_clock=database_clock, lock=True), engine.dialect
        )
        self._load_account = DirectStatement(LOAD_ACCOUNT, engine.dialect)
        self._open_holds = DirectStatement(OPEN_HOLDS, engine.dialect)
        self._find_hold = DirectStatement(FIND_HOLD, engine.dialect)
        # The database's time alone (None on SQLite: the process's clock is its clock).
        self._read_now = read_database_now(dialect) if database_clock else None
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
        ready (schema missing or at another revision, a table missing or unreadable, the
        disk of a SQLite file full).
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
        return self._unreadable_table() or full_disk(self.engine)

    def _unreadable_table(self) -> str | None:
        """``None`` when one row (or none) of each table can be read, else which table
        cannot; :class:`StorageUnavailableError` when the database does not answer."""
        try:
            self._read(lambda conn: conn.execute(READ_EVERY_TABLE).all())
            return None
        except (StorageUnavailableError, sa_exc.DBAPIError):
            self.ping()  # down, rather than a table gone: raises
        for table in metadata.sorted_tables:
            probe = read_one_row(table)
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
            read = self._lock_stamped
            with pipelined(conn):  # PostgreSQL: BEGIN and the locking read, one round trip
                cursor = read.execute(conn, {"subject": subject})
            self._local.held = _Held(conn, subject, self._stamp(conn, read.first(cursor)))
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
            return held.stamped.account

        read = self._load_account

        def query(conn: Connection) -> Account | None:
            row = read.first(read.execute(conn, {"subject": subject}))
            return None if row is None else account_from_row(row)

        return self._read(query)

    # -- time ----------------------------------------------------------------------

    def load_stamped(self, subject: str) -> Stamped:
        """:meth:`load` with the database's time (per ``clock_source``) and the instant of
        the account's last entry, in the same statement (a second one, for the time,
        only for a subject with no account yet); the optional capability the services
        look for. Inside :meth:`locked`, the row read with the lock."""
        held = self._held()
        if held is not None and held.subject == subject and not held.loaded:
            held.loaded = True
            return held.stamped
        read = self._load_stamped
        return self._read(
            lambda conn: self._stamp(conn, read.first(read.execute(conn, {"subject": subject})))
        )

    def current_time(self) -> datetime | None:
        """The database's time (one round trip; the process's clock on SQLite), or
        ``None`` with ``clock_source="process"``."""
        if self._read_now is None:
            return datetime.now(UTC) if self.clock_source == "database" else None
        query = self._read_now
        now: datetime = self._read(lambda conn: conn.execute(query).scalar_one())
        return now

    def _stamp(self, conn: Connection, m: Mapping[str, Any] | None) -> Stamped:
        if m is None:
            if self._read_now is None:
                return Stamped(None, self.current_time())
            return Stamped(None, conn.execute(self._read_now).scalar_one())
        if self._read_now is not None:
            now = m[DATABASE_NOW]
        else:
            now = datetime.now(UTC) if self.clock_source == "database" else None
        return Stamped(account_from_row(m), now, m[LAST_ENTRY_AT])

    def commit(self, commit: Commit) -> None:
        account = commit.account
        values = account_values(account)
        dialect = self.engine.dialect
        with self._write() as conn:
            # PostgreSQL: the writes go together, in one round trip; their outcomes
            # (the rows each matched) are checked once the database has answered all.
            # Records written through SQLAlchemy (payments, events) need their answers
            # as they go: a commit with one of those is sent statement by statement.
            together = all(isinstance(record, DIRECT_RECORDS) for record in commit.records)
            checks = []
            with pipelined(conn) if together else nullcontext():
                if commit.expected_version == 0:
                    # A concurrent creator makes this a unique violation: a lost race.
                    write = direct(INSERT_ACCOUNT, dialect, ("subject", *values))
                    write.execute(conn, {"subject": account.subject, **values})
                else:
                    # The compare-and-write. MySQL dialects connect with CLIENT.FOUND_ROWS,
                    # so rowcount counts matched rows there too (and version always changes).
                    write = direct(UPDATE_ACCOUNT, dialect, tuple(values))
                    checks.append(
                        one_row(
                            write.execute(
                                conn,
                                {
                                    "b_subject": account.subject,
                                    "b_expected": commit.expected_version,
                                    **values,
                                },
                            ),
                            f"account {account.subject!r} changed since the read",
                        )
                    )
                if commit.entries:
                    rows = [entry_values(e) for e in commit.entries]
                    direct(INSERT_ENTRIES, dialect, tuple(rows[0])).execute_many(conn, rows)
                    add_usage(conn, commit.entries)  # the daily usage rollup (docs/reports.md)
                for record in commit.records:
                    check = write_record(conn, record)
                    if check is not None:
                        checks.append(check)
            for check in checks:
                check()

    def find_receipt(self, subject: str, caller: str, idempotency_key: str) -> DebitReceipt | None:
        def query(conn: Connection) -> DebitReceipt | None:
            row = conn.execute(
                FIND_RECEIPT, {"subject": subject, "caller": caller, "key": idempotency_key}
            ).first()
            if row is None:
                return None
            # A replay: the usage is the snapshot after the debit's entry, one primary-key
            # read of the ledger (written in the receipt's own transaction, so it exists).
            entry = conn.execute(ENTRY_AT, {"subject": subject, "version": row.version}).one()
            return receipt_from_row(row, entry_from_row(entry))

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
        return self._read(lambda conn: [entry_from_row(row) for row in conn.execute(query)])

    # -- holds ---------------------------------------------------------------------

    def outstanding(self, subject: str) -> Outstanding:
        query = self._open_holds
        return self._read(
            lambda conn: Outstanding(
                tuple(
                    hold_from_row(row)
                    for row in query.rows(query.execute(conn, {"subject": subject}))
                )
            )
        )

    def find_hold(self, subject: str, hold_id: str, *, caller: str | None = None) -> Hold | None:
        key = {"subject": subject, "caller": subject if caller is None else caller}
        query = self._find_hold

        def read(conn: Connection) -> Hold | None:
            row = query.first(query.execute(conn, {**key, "hold_id": hold_id}))
            return None if row is None else hold_from_row(row)

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

    # -- reports (the UsageReports and AccountDirectory capabilities) ---------------

    def usage_rows(
        self, *, start: date, end: date, subject: str | None, by_day: bool, by_model: bool
    ) -> Sequence[UsageRow]:
        # One subject: a range scan of the primary key (subject, day, model); every
        # subject: of the (day, subject) index. Either way rollup rows, never the ledger.
        keys = [usage_daily.c.day] if by_day else []
        keys += [usage_daily.c.model] if by_model else []
        where = [usage_daily.c.day >= start, usage_daily.c.day <= end]
        if subject is not None:
            where.append(usage_daily.c.subject == subject)
        query = select(*keys, *_SUMS).where(*where)
        if keys:
            query = query.group_by(*keys).order_by(*keys)

        width = len(keys)

        def read(conn: Connection) -> list[UsageRow]:
            rows = []
            for row in conn.execute(query):
                counts = row[width:]
                if counts[1] is None:  # no row in range: the sums of nothing
                    continue
                day = row[0] if by_day else None
                model = row[width - 1] if by_model else None
                rows.append(UsageRow(day, model, *(int(count) for count in counts)))
            return rows

        return self._read(read)

    def top_spenders(
        self, *, start: date, end: date, limit: int, after: tuple[int, str] | None = None
    ) -> Sequence[Spender]:
        credits = _SUMS[0]
        query = (
            select(usage_daily.c.subject, *_SUMS)
            .where(usage_daily.c.day >= start, usage_daily.c.day <= end)
            .group_by(usage_daily.c.subject)
        )
        if after is not None:
            spent, subject = after
            query = query.having(
                or_(credits < spent, and_(credits == spent, usage_daily.c.subject > subject))
            )
        query = query.order_by(credits.desc(), usage_daily.c.subject).limit(max(0, limit))

        def read(conn: Connection) -> list[Spender]:
            return [
                Spender(
                    row._mapping["subject"],
                    UsageRow(None, None, **{n: int(row._mapping[n]) for n in USAGE_COUNTS}),
                )
                for row in conn.execute(query)
            ]

        return self._read(read)

    def list_accounts(
        self,
        *,
        limit: int,
        after: str | None = None,
        plan: str | None = None,
        or_ended_by: datetime | None = None,
    ) -> Sequence[Account]:
        # Keyset pagination on the primary key: one range scan per page.
        query = select(accounts)
        if after is not None:
            query = query.where(accounts.c.subject > after)
        if plan is not None:
            on_plan = accounts.c.plan_id == plan
            if or_ended_by is not None:
                on_plan = or_(on_plan, accounts.c.plan_end_at <= or_ended_by)
            query = query.where(on_plan)
        query = query.order_by(accounts.c.subject).limit(max(0, limit))
        return self._read(lambda conn: [account_from_row(row) for row in conn.execute(query)])

    # -- payments ------------------------------------------------------------------

    def add_payment(self, payment: Payment) -> None:
        with self._write() as conn:
            conn.execute(insert(payments).values(**payment_values(payment)))

    def find_payment(self, order_id: str) -> Payment | None:
        def query(conn: Connection) -> Payment | None:
            row = conn.execute(select(payments).where(payments.c.order_id == order_id)).first()
            return None if row is None else payment_from_row(row)

        return self._read(query)

    def find_payment_by_gateway_id(self, gateway_payment_id: str) -> Payment | None:
        query = (
            select(payments)
            .where(payments.c.gateway_payment_id == gateway_payment_id)
            .order_by(payments.c.created_at, payments.c.id)
            .limit(1)
        )

        def read(conn: Connection) -> Payment | None:
            row = conn.execute(query).first()
            return None if row is None else payment_from_row(row)

        return self._read(read)

    def payments_of(self, subject: str, *, limit: int = 100) -> Sequence[Payment]:
        query = (
            select(payments)
            .where(payments.c.subject == subject)
            .order_by(payments.c.created_at.desc(), payments.c.id.desc())
            .limit(max(0, limit))
        )
        return self._read(lambda conn: [payment_from_row(row) for row in conn.execute(query)])

    def update_payment(
        self,
        payment: Payment,
        *,
        expected_status: PaymentStatus,
        event_id: str | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        with self._write() as conn:
            result = conn.execute(
                update(payments)
                .where(payments.c.id == payment.id, payments.c.status == expected_status.value)
                .values(**payment_values(payment))
            )
            if result.rowcount != 1:
                raise WriteConflictError(f"payment {payment.id!r} changed since the read")
            if event_id is not None:
                mark_event(conn, HandledEvent(event_id))
            for event in events:
                insert_event(conn, event)

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
                raise_translated(error)
        for attempt in range(2):
            try:
                with self._reader.connect() as conn:
                    return query(conn)
            except sa_exc.DBAPIError as error:
                if attempt == 0 and error.connection_invalidated:
                    continue
                raise_translated(error, reading=True)
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
                raise_translated(error)
            return
        try:
            with self._write_lock, self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except sa_exc.DBAPIError as error:
            raise_translated(error)
        except sa_exc.TimeoutError as error:
            raise StorageUnavailableError(f"no database connection free: {error}") from error


#: The rollup's numbers summed, labelled by their columns (credits first).
_SUMS = [func.sum(usage_daily.c[name]).label(name) for name in USAGE_COUNTS]


@attrs.define
class _Held:
    """A thread's transaction inside :meth:`SqlAccountStore.locked`: its connection, and
    the locked row with its time (read at the lock, handed to the first load)."""

    conn: Connection
    subject: str
    stamped: Stamped
    loaded: bool = False
