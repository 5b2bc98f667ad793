"""Engines with sensible per-dialect defaults for tokenplans' short, contended transactions.

* **SQLite** (the embedded default): WAL, so readers never wait for the writer;
  ``busy_timeout`` 30 s, so writers queue instead of failing; ``synchronous=NORMAL``
  (durable at each checkpoint, the usual WAL pairing) and foreign keys on. Python's
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
  inserts into deadlocks), ``pool_pre_ping`` and a pool of 5 connections plus 10 more
  under load (:data:`SERVER_POOLS`). On a **MariaDB Galera** node
  (``wsrep_on``, checked on connect) each session also gets ``wsrep_sync_wait=1``: a
  read first waits until this node has applied every write the cluster had committed
  when the read began, so a read on one node sees a write just acknowledged by another
  (without it, such a read can be stale, and the compare-and-write would decide on an
  old version, fail, and retry). A stronger server-wide setting is kept as it is.
* **PostgreSQL**: its default ``READ COMMITTED``, ``pool_pre_ping`` and a pool of 10
  connections plus 20 more under load.

A server database's pool is per process: ``n`` workers open up to ``n`` times
``pool_size + max_overflow`` connections (``pool_size=`` and ``max_overflow=`` change it).

Every default can be overridden: keyword arguments go to :func:`sqlalchemy.create_engine`
and win over ours, and driver options in the URL's query string reach the driver.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

#: The execution option a store sets on a connection that will write (SQLite only uses it).
WRITE_OPTION = "tokenplans_write"
SQLITE_BUSY_TIMEOUT_S = 30.0
#: The HTTP API runs the store on 40 threads (``tokenplans_adapters.http.offload``, sized like
#: anyio's default thread pool, which FastAPI hosts use).
SQLITE_POOL_SIZE = 40
#: A server database's pool per process: the connections it keeps open (``pool_size``),
#: and how many more it may open under load (``max_overflow``), by backend.
SERVER_POOLS = {"postgresql": (10, 20), "mysql": (5, 10), "mariadb": (5, 10)}


def server_pool(url: str | URL) -> tuple[int, int] | None:
    """The default ``(pool_size, max_overflow)`` of an engine for ``url``, or ``None`` for
    SQLite (whose pool is sized to the server's threads, not to a server's connections)."""
    return SERVER_POOLS.get(make_url(url).get_backend_name())


def make_engine(url: str | URL, **engine_overrides: Any) -> Engine:
    """An engine for ``url`` with tokenplans' defaults for its dialect (module docstring);
    ``engine_overrides`` are passed to :func:`sqlalchemy.create_engine` over ours."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {}
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
        options.update(isolation_level="READ COMMITTED", pool_pre_ping=True, pool_recycle=3600)
    elif backend == "postgresql":
        options.update(pool_pre_ping=True)
    if backend in SERVER_POOLS:
        options["pool_size"], options["max_overflow"] = SERVER_POOLS[backend]
    options.update(engine_overrides)
    engine = create_engine(parsed, **options)
    if backend == "sqlite":
        _prepare_sqlite(engine)
    elif backend in ("mysql", "mariadb"):
        _prepare_mysql(engine)
    return engine


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


def _prepare_mysql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
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


def _prepare_sqlite(engine: Engine) -> None:
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
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Reads stay in the driver's autocommit mode: no BEGIN, no round of SQLAlchemy's
        # execution machinery for it.
        if connection.get_execution_options().get(WRITE_OPTION, False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
