"""Engines with sensible per-dialect defaults for tokenplans' short, contended transactions.

* **SQLite** (the embedded default): WAL, so readers never wait for the writer;
  ``busy_timeout`` 30 s, so writers queue instead of failing; ``synchronous=FULL``
  (each commit synced to disk, so it survives a power loss; ``sqlite_synchronous="NORMAL"``
  syncs at checkpoints only, faster, and loses the last commits on a power loss, not on a
  crash: :data:`SQLITE_SYNCHRONOUS_LEVELS`) and foreign keys on. Python's
  ``sqlite3`` module starts transactions by itself, lazily and never for SELECT, so we
  follow SQLAlchemy's documented recipe: switch that off (``isolation_level = None``) and
  emit our own ``BEGIN`` from the ``begin`` event - ``BEGIN IMMEDIATE`` for a write, so
  the write lock is taken up front and two writers never both read, then deadlock on
  upgrading their locks. A read sends no ``BEGIN``: one ``SELECT`` is atomic by itself,
  and every read the store makes is one statement or reads rows that never change. The
  pool holds as many connections as the server's thread pool has threads
  (:data:`SQLITE_POOL_SIZE`), so that connections are reused, not opened and closed
  (and their PRAGMAs run again) per request under load.
* **MySQL/MariaDB**: ``utf8mb4``, ``READ COMMITTED`` (the compare-and-write needs no
  snapshot, and it avoids REPEATABLE READ's gap locks, which turn concurrent ledger
  inserts into deadlocks), a ping of a connection idle for a while (below), recycling
  after an hour and a pool of 8 connections, none more under load
  (:data:`SERVER_POOLS`). On a **MariaDB Galera** node
  (``wsrep_on``, checked on connect) each session also gets ``wsrep_sync_wait=1``: a
  read first waits until this node has applied every write the cluster had committed
  when the read began, so a read on one node sees a write just acknowledged by another
  (without it, such a read can be stale, and the compare-and-write would decide on an
  old version, fail, and retry). A stronger server-wide setting is kept as it is.
* **PostgreSQL**: its default ``READ COMMITTED``, a ping of a connection idle for a
  while, recycling after an hour and a pool of 10 connections, none more under load.

**Dead connections** (PostgreSQL and MySQL/MariaDB): a pooled connection that has been
idle for :data:`DEFAULT_PING_AFTER_IDLE_S` seconds or more is pinged (one round trip)
before it is handed out, and replaced if the ping fails; one in steady use is not
(SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip per request,
measured at a third of a usage read's throughput). A connection that died while in
steady use fails its next statement: SQLAlchemy then discards every connection opened
before the failure (the database probably restarted), a read is retried once on a fresh
connection by the store, and a write answers 503 (its outcome is unknown only when the
failure cut off a commit: retry it with its idempotency key). ``ping_after_idle=0``
pings on every checkout, ``None`` never.

A server database's pool has no overflow by default: an overflow connection is opened
for one request and closed after it, and under steady load that was a new connection
(a PostgreSQL backend forked, authenticated, and torn down: more database CPU than the
request itself) for 6-17 % of requests. The server runs its storage calls on as many
threads as the pool has connections, so no thread waits for one in steady state
(``docs/performance.md``).

**Bounded waits** (PostgreSQL and MySQL/MariaDB): a silent partition (packets dropped,
no reset) must become a :class:`~tokenplans.StorageUnavailableError` (503), not a
request hanging for the partition's length. So every connection gets a connect timeout
(``connect_timeout``, :data:`DEFAULT_CONNECT_TIMEOUT_S`), TCP keepalives (a dead peer of
an idle pooled connection is noticed after about ``keepalive + 3 x 10`` s), and a
deadline per database call (``call_timeout``, :data:`DEFAULT_CALL_TIMEOUT_S`): each
round trip of a statement, the ping of an idle connection included, that gets no answer within it
raises, and its connection is closed (so the pool drops it). On PostgreSQL the server
also cancels a statement past it (``statement_timeout``), so a slow statement ends
cleanly before the client gives up on it; the client-side deadline (psycopg's wait for
the socket) is what ends a call when the network, not the server, is what stalls. On
MySQL/MariaDB it is PyMySQL's ``read_timeout`` and ``write_timeout``. Keepalives and the
server's timeout alone are not enough: a peer that still acknowledges packets but never
answers (a stalled proxy, a frozen server) defeats both. ``call_timeout=None`` turns the
deadline off (migrations run without one). SQLite has no network: its wait is the busy
timeout.

A server database's pool is per process: ``n`` workers open up to ``n`` times
``pool_size + max_overflow`` connections (``pool_size=`` and ``max_overflow=`` change it).

Every default can be overridden: keyword arguments go to :func:`sqlalchemy.create_engine`
and win over ours, and driver options in the URL's query string reach the driver.
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

#: The execution option a store sets on a connection that will write (SQLite only uses it).
WRITE_OPTION = "tokenplans_write"
SQLITE_BUSY_TIMEOUT_S = 30.0
#: A SQLite file's pool by default: ``tokenplans_adapters.http.offload`` runs the store on
#: 40 threads unless told otherwise (sized like anyio's default thread pool, which FastAPI
#: hosts use); ``tokenplans serve`` runs fewer and sizes the pool to them.
SQLITE_POOL_SIZE = 40
#: A server database's pool per process: the connections it keeps open (``pool_size``),
#: and how many more it may open under load (``max_overflow``; none: see above), by backend.
SERVER_POOLS = {"postgresql": (10, 0), "mysql": (8, 0), "mariadb": (8, 0)}
#: SQLite's ``PRAGMA synchronous`` levels we accept, and the default: in WAL mode, FULL
#: syncs the log at every commit, so a commit acknowledged survives a power loss; NORMAL
#: syncs only at checkpoints (a commit survives the process being killed, not the machine
#: losing power: the last commits before it may be lost).
SQLITE_SYNCHRONOUS_LEVELS = ("FULL", "NORMAL", "EXTRA")
DEFAULT_SQLITE_SYNCHRONOUS = "FULL"
#: Seconds to open a connection (TCP and the database's handshake) before giving up.
DEFAULT_CONNECT_TIMEOUT_S = 5
#: Seconds one database call (a statement's round trip) may wait for its answer.
DEFAULT_CALL_TIMEOUT_S = 10
#: Seconds a pooled connection stays idle before TCP keepalive probes start; probes
#: then go every :data:`KEEPALIVE_INTERVAL_S` s, and :data:`KEEPALIVE_PROBES` unanswered
#: ones close the connection.
DEFAULT_KEEPALIVE_S = 30
KEEPALIVE_INTERVAL_S = 10
KEEPALIVE_PROBES = 3
#: Seconds a pooled server-database connection may sit idle and still be handed out
#: without a ping first (module docstring).
DEFAULT_PING_AFTER_IDLE_S = 2.0
#: Seconds after which a server database's connection is replaced, used or not.
RECYCLE_S = 3600


def server_pool(url: str | URL) -> tuple[int, int] | None:
    """The default ``(pool_size, max_overflow)`` of an engine for ``url``, or ``None`` for
    SQLite (whose pool is sized to the server's threads, not to a server's connections)."""
    return SERVER_POOLS.get(make_url(url).get_backend_name())


def make_engine(
    url: str | URL,
    *,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S,
    call_timeout: float | None = DEFAULT_CALL_TIMEOUT_S,
    keepalive: int = DEFAULT_KEEPALIVE_S,
    sqlite_synchronous: str = DEFAULT_SQLITE_SYNCHRONOUS,
    ping_after_idle: float | None = DEFAULT_PING_AFTER_IDLE_S,
    **engine_overrides: Any,
) -> Engine:
    """An engine for ``url`` with tokenplans' defaults for its dialect (module docstring):
    ``connect_timeout``, ``call_timeout`` (``None``: no deadline) and ``keepalive`` in
    seconds bound a server database's waits; a server database's pooled connection idle
    for ``ping_after_idle`` seconds is pinged before use (``None``: never; ``0``: always);
    ``engine_overrides`` are passed to
    :func:`sqlalchemy.create_engine` over ours."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {}
    waits = _Waits(connect_timeout, call_timeout, keepalive)
    if backend == "sqlite":
        options["connect_args"] = {
            "timeout": SQLITE_BUSY_TIMEOUT_S,
            "check_same_thread": False,
        }
        if parsed.database not in (None, "", ":memory:"):  # a file: a QueuePool
            options.update(pool_size=SQLITE_POOL_SIZE, max_overflow=10)
    elif backend in ("mysql", "mariadb"):
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        options.update(isolation_level="READ COMMITTED", pool_recycle=RECYCLE_S)
        options["connect_args"] = _unless_in(parsed, waits.mysql_args())
    elif backend == "postgresql":
        options.update(pool_recycle=RECYCLE_S)
        options["connect_args"] = _unless_in(parsed, waits.postgres_args())
    if backend in SERVER_POOLS:
        options["pool_size"], options["max_overflow"] = SERVER_POOLS[backend]
    options.update(engine_overrides)
    engine = create_engine(parsed, **options)
    if backend in SERVER_POOLS and ping_after_idle is not None:
        _ping_when_idle(engine, ping_after_idle)
    if backend == "sqlite":
        if sqlite_synchronous.upper() not in SQLITE_SYNCHRONOUS_LEVELS:
            raise ValueError(
                f"sqlite_synchronous must be one of {SQLITE_SYNCHRONOUS_LEVELS}, "
                f"got {sqlite_synchronous!r}"
            )
        _prepare_sqlite(engine, sqlite_synchronous.upper())
    elif backend in ("mysql", "mariadb"):
        _prepare_mysql(engine, waits)
    elif backend == "postgresql" and engine.dialect.driver == "psycopg":
        _prepare_psycopg(engine, call_timeout)
    return engine


@attrs.frozen
class _Waits:
    """How long a server database's connection may wait, in seconds (module docstring)."""

    connect: int
    call: float | None
    keepalive: int

    def postgres_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "connect_timeout": self.connect,
            "keepalives": 1,
            "keepalives_idle": self.keepalive,
            "keepalives_interval": KEEPALIVE_INTERVAL_S,
            "keepalives_count": KEEPALIVE_PROBES,
        }
        if self.call is not None:
            args["options"] = f"-c statement_timeout={int(self.call * 1000)}"
        return args

    def mysql_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"connect_timeout": self.connect}
        if self.call is not None:
            # PyMySQL takes whole seconds for these (socket timeouts, per read or write).
            args["read_timeout"] = args["write_timeout"] = max(1, math.ceil(self.call))
        return args


def _unless_in(url: URL, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` but those the URL's query string sets (the URL's options win)."""
    return {name: value for name, value in args.items() if name not in url.query}


#: Seconds the client waits past PostgreSQL's ``statement_timeout`` before giving up.
CLIENT_GRACE_S = 1.0
#: A psycopg call past the deadline: its connection is closed, and this is raised.
CALL_TIMED_OUT = "the database did not answer within {:g} s; the connection was closed"


def _prepare_psycopg(engine: Engine, call_timeout: float | None) -> None:
    """Each connection waits at most ``call_timeout`` for any answer (``None``: forever).

    psycopg waits for its socket with a timeout only where it asks for one; a connection
    of :func:`_deadline_connection` asks for ``call_timeout`` on every wait, and on the
    deadline closes itself and raises ``OperationalError``: SQLAlchemy sees a closed
    connection, a disconnect, and invalidates it."""
    if call_timeout is None:
        return
    connection_class = _deadline_connection(call_timeout)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return connection_class.connect(*cargs, **cparams)


def _deadline_connection(call_timeout: float) -> type[Any]:
    import psycopg  # noqa: PLC0415 - only a PostgreSQL engine needs it

    timed_out = getattr(psycopg.errors, "_WaitTimeout", psycopg.errors.OperationalError)
    # A moment past the server's statement_timeout, so a slow statement is cancelled by
    # the server (cleanly, its connection kept) before the client gives up on it.
    deadline = call_timeout + CLIENT_GRACE_S

    class DeadlineConnection(psycopg.Connection[Any]):
        """A psycopg connection whose every wait for the server ends at the deadline."""

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            try:
                return super().wait(gen, interval, deadline if timeout is None else timeout)
            except timed_out:
                self.pgconn.finish()
                raise psycopg.OperationalError(CALL_TIMED_OUT.format(deadline)) from None

    return DeadlineConnection


#: Where a pooled connection's record keeps when it was last returned to the pool.
_RETURNED_AT = "tokenplans_returned_at"


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a connection before it is handed out when it has been idle ``idle_s`` seconds
    or more; one that fails the ping is replaced (module docstring)."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _handed_out(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned < idle_s:
            return  # new, or in steady use
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool closes this connection and hands out a new one.
            raise sa_exc.DisconnectionError(
                f"a pooled connection failed its ping: {error}"
            ) from error


def _switch_to_wal(cursor: Any, locked_error: type[Exception]) -> None:
    """``PRAGMA journal_mode=WAL``, retried for up to the connection's busy timeout.

    WAL is a property of the file, so only a new database switches; but while another
    connection holds a transaction on a file not in WAL yet (several first users of a
    fresh database at once), SQLite refuses the switch at once with "database is locked"
    instead of waiting on the busy timeout as a write would.
    """
    (busy_ms,) = cursor.execute("PRAGMA busy_timeout").fetchone()
    deadline = time.monotonic() + busy_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except locked_error as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)
        else:
            return


#: ``wsrep_sync_wait``'s bit for reads (SELECT, SHOW, BEGIN): wait for causality first.
WSREP_SYNC_READS = 1


def _keepalive(sock: socket.socket | None, idle: int) -> None:
    """TCP keepalive on ``sock`` after ``idle`` s, where the platform lets us tune it
    (PyMySQL turns keepalive on with the system's timing: two hours, on Linux)."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", idle),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
    ):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _prepare_mysql(engine: Engine, waits: _Waits) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        _keepalive(getattr(dbapi_connection, "_sock", None), waits.keepalive)
        cursor = dbapi_connection.cursor()
        try:
            # Plain MySQL has neither variable; MariaDB without Galera has wsrep_on=OFF.
            cursor.execute(
                "SHOW SESSION VARIABLES WHERE Variable_name IN ('wsrep_on', 'wsrep_sync_wait')"
            )
            variables = {str(name).lower(): str(value) for name, value in cursor.fetchall()}
            if variables.get("wsrep_on", "OFF").upper() == "ON":
                sync_wait = int(variables.get("wsrep_sync_wait", "0"))
                if not sync_wait & WSREP_SYNC_READS:
                    cursor.execute(
                        "SET SESSION wsrep_sync_wait = %s", (sync_wait | WSREP_SYNC_READS,)
                    )
        finally:
            cursor.close()


def _prepare_sqlite(engine: Engine, synchronous: str) -> None:
    in_memory = engine.url.database in (None, "", ":memory:")
    locked_error = engine.dialect.dbapi.OperationalError  # type: ignore[union-attr]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The recipe: the driver stops emitting BEGIN; _on_begin does it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout comes from the driver's ``timeout`` (connect_args, overridable).
            if not in_memory:
                _switch_to_wal(cursor, locked_error)
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Reads stay in the driver's autocommit mode: no BEGIN, no round of SQLAlchemy's
        # execution machinery for it.
        if connection.get_execution_options().get(WRITE_OPTION, False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


#: Free space below which a SQLite file's disk counts as full for readiness: a commit
#: needs room for its pages in the write-ahead log, and an account change writes a few.
SQLITE_MIN_FREE_BYTES = 1 << 20


def full_disk(engine: Engine) -> str | None:
    """Why a SQLite file database cannot take writes (its disk is full), else ``None``.

    Reads still succeed on a full disk, and a write-ahead log that was reset may even
    take a small write, so no read or rolled-back write tells; the file system's free
    space does, in one ``statvfs`` call. Server databases report a full disk themselves.
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    folder = Path(engine.url.database).resolve().parent
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None  # the read probes say what is wrong with a missing folder
    free = stats.f_bavail * stats.f_frsize
    if free >= SQLITE_MIN_FREE_BYTES:
        return None
    return f"the disk holding the SQLite database is full ({free} bytes free): writes fail"
