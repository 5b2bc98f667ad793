"""The hot statements on the DB-API cursor: compiled by SQLAlchemy once, run without it.

A debit's statements (the account's row read under its lock, the compare-and-write, the
ledger insert, the rollup's upsert, a hold's row) are a few fixed statements run
thousands of times a second. SQLAlchemy's execution of one (its execution context,
parameter processing, result wrapping) costs more CPU than SQLite spends running it, and
a third of a debit's on PostgreSQL. Here each such statement is compiled once per dialect
by SQLAlchemy from the same :mod:`.schema` tables, with the bind and result processors of
its columns' types, and then run on the connection's DB-API cursor: the SQL, the type
conversions and the transaction stay SQLAlchemy's (the statements run on the connection
of a SQLAlchemy :class:`~sqlalchemy.engine.Connection`, inside its transaction); only the
per-call machinery is skipped. Everything else the store does goes through SQLAlchemy.

What SQLAlchemy would still do for these statements is kept:

* a driver's error becomes :class:`sqlalchemy.exc.DBAPIError` (so the store's one
  translation of errors applies), and a lost connection is invalidated, as SQLAlchemy
  does, so the pool never hands it out again;
* ``before_cursor_execute`` / ``after_cursor_execute`` listeners on the engine (a host's
  tracing, the fault tests' hooks) are called with the statement and its parameters
  (``context`` is ``None``: there is no SQLAlchemy execution context).

On PostgreSQL with psycopg, :func:`pipelined` sends a group of statements in one round
trip (psycopg's pipeline mode): the transaction's ``BEGIN`` with the row lock's read, and
a change's writes together, so a debit costs three round trips (``BEGIN`` + lock, the
writes, ``COMMIT``) instead of six.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Dialect
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

#: A bind or result processor of a column's type for a dialect (``None``: none needed).
_Processor = Callable[[Any], Any] | None


class DirectStatement:
    """``statement`` compiled for ``dialect`` (with ``column_keys`` for an ``INSERT`` or
    ``UPDATE``: the columns it sets), run on a connection's DB-API cursor."""

    def __init__(
        self,
        statement: ClauseElement,
        dialect: Dialect,
        *,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        compiled = cast(
            SQLCompiler,  # a statement's compiler: its binds and their order
            statement.compile(
                dialect=dialect, column_keys=None if column_keys is None else list(column_keys)
            ),
        )
        self.sql: str = compiled.string
        self._positional = compiled.positional
        names = compiled.positiontup if compiled.positional else list(compiled.binds)
        # Per bind: its name, its value when none is given (a literal of the statement's
        # own, such as a status it selects on), and its type's processor.
        self._binds: list[tuple[str, Any, _Processor]] = []
        for name in names or ():
            bind = compiled.binds[name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self._binds.append((name, bind.value, processor))
        # Per result column: its key and processor (a select's columns, in order).
        selected = getattr(statement, "selected_columns", None)
        self._columns: list[tuple[str, _Processor]] = [
            (column.key, column.type.dialect_impl(dialect).result_processor(dialect, None))
            for column in (selected or ())
        ]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters for ``values`` (by bind name), converted by type."""
        converted = []
        for name, literal, processor in self._binds:
            value = values.get(name, literal)
            converted.append(value if processor is None else processor(value))
        if self._positional:
            return tuple(converted)
        return {name: value for (name, *_), value in zip(self._binds, converted, strict=True)}

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """Run the statement with ``values``; the DB-API cursor it ran on."""
        return run(conn, self.sql, self.parameters(values))

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> Any:
        if len(rows) == 1:
            return self.execute(conn, rows[0])
        return run(conn, self.sql, [self.parameters(row) for row in rows], many=True)

    def rows(self, cursor: Any) -> list[dict[str, Any]]:
        """The result's rows as mappings by column key, converted by type."""
        return [self._mapping(row) for row in cursor.fetchall()]

    def first(self, cursor: Any) -> dict[str, Any] | None:
        row = cursor.fetchone()
        return None if row is None else self._mapping(row)

    def _mapping(self, row: Sequence[Any]) -> dict[str, Any]:
        return {
            key: value if processor is None else processor(value)
            for (key, processor), value in zip(self._columns, row, strict=True)
        }


def dbapi_connection(conn: Connection) -> Any:
    """The DB-API connection under ``conn`` (a pooled connection's driver connection)."""
    return conn.connection.driver_connection


def run(conn: Connection, sql: str, parameters: Any, *, many: bool = False) -> Any:
    """Execute ``sql`` on a new DB-API cursor of ``conn``, with the engine's
    cursor-execute listeners called around it and a driver error raised as
    :class:`sqlalchemy.exc.DBAPIError` (the connection invalidated when it was lost)."""
    try:
        cursor = dbapi_connection(conn).cursor()
    except Exception as error:
        _raise_wrapped(conn, error, sql, parameters, None)
    dispatch = conn.dispatch
    if dispatch.before_cursor_execute:
        dispatch.before_cursor_execute(conn, cursor, sql, parameters, None, many)
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
    except Exception as error:
        _raise_wrapped(conn, error, sql, parameters, cursor)
    if dispatch.after_cursor_execute:
        dispatch.after_cursor_execute(conn, cursor, sql, parameters, None, many)
    return cursor


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """The statements run in the block go to the database together, in one round trip
    (psycopg's pipeline mode: their results are read at the end of the block, where an
    error of any of them is raised); elsewhere, and while the engine has cursor-execute
    listeners, each runs as it comes."""
    dbapi = dbapi_connection(conn)
    pipeline = getattr(dbapi, "pipeline", None)
    # A cursor-execute listener may run statements of its own on the connection (a
    # fault test's, say), whose answers a pipeline would not give it in turn.
    listened = conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute
    if pipeline is None or conn.dialect.name != "postgresql" or listened:
        yield
        return
    try:
        with pipeline():
            yield
    except sa_exc.DBAPIError:
        raise
    except Exception as error:
        _raise_wrapped(conn, error, "(pipeline)", None, None)


def _raise_wrapped(
    conn: Connection, error: Exception, sql: str, parameters: Any, cursor: Any
) -> Any:
    """Raise ``error`` as SQLAlchemy would: a driver's error as a :class:`DBAPIError`
    (invalidating the connection when the driver says it is lost), anything else as is."""
    dialect = conn.dialect
    dbapi_module = dialect.loaded_dbapi
    if not isinstance(error, dbapi_module.Error):
        raise error
    lost = dialect.is_disconnect(error, dbapi_connection(conn), cursor)
    if lost:
        conn.invalidate(error)
    raise sa_exc.DBAPIError.instance(
        sql,
        parameters,
        error,
        dbapi_module.Error,
        connection_invalidated=lost,
        dialect=dialect,
    ) from error


#: Each dialect's compiled statements, by statement and the columns it sets.
_COMPILED: WeakKeyDictionary[Dialect, dict[tuple[int, tuple[str, ...] | None], DirectStatement]]
_COMPILED = WeakKeyDictionary()


def direct(
    statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None
) -> DirectStatement:
    """``statement`` as a :class:`DirectStatement` for ``dialect``, compiled on first use
    (``statement`` must live as long as the process: a module's constant)."""
    keys = None if column_keys is None else tuple(column_keys)
    per_dialect = _COMPILED.get(dialect)
    if per_dialect is None:
        per_dialect = _COMPILED.setdefault(dialect, {})
    found = per_dialect.get((id(statement), keys))
    if found is None:
        found = per_dialect[(id(statement), keys)] = DirectStatement(
            statement, dialect, column_keys=keys
        )
    return found
