"""Database errors as core errors, in one place.

Key collisions, deadlocks and serialization failures are write conflicts (the service
decides again on a fresh read); lost connections and unreachable servers are
:class:`StorageUnavailableError`; anything else (a bug: bad SQL, a value out of range)
surfaces as it is, loudly, rather than being retried.
"""

from __future__ import annotations

from typing import NoReturn

from sqlalchemy import exc as sa_exc

from tokenplans.ports import StorageUnavailableError, WriteConflictError

#: Unique-key violations: PostgreSQL SQLSTATE, MySQL error numbers, SQLite error names.
_UNIQUE_VIOLATIONS = frozenset(
    {"23505", 1062, 1586, "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"}
)
#: Lost races the database resolved by aborting us: serialization failure, deadlock,
#: lock wait timeout. The transaction is gone; deciding again is safe.
_RACES_LOST = frozenset({"40001", "40P01", 1213, 1205})


def error_code(error: sa_exc.DBAPIError) -> object:
    """The driver's code for ``error``: an SQLSTATE, a MySQL error number or an SQLite
    error name; ``None`` when the driver gives none."""
    orig = error.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):  # PyMySQL: (errno, message); its sqlstate is coarse
        return args[0]
    for attribute in ("sqlstate", "sqlite_errorname"):  # psycopg, sqlite3
        code = getattr(orig, attribute, None)
        if code is not None:
            return code
    return None


def raise_translated(error: sa_exc.DBAPIError, *, reading: bool = False) -> NoReturn:
    """Raise the core error for ``error`` (see :func:`translate`), chained to it."""
    translated = translate(error, reading=reading)
    if translated is error:
        raise error
    raise translated from error


def translate(error: sa_exc.DBAPIError, *, reading: bool = False) -> Exception:
    """The core error for a database error; anything unexpected is returned as it is.

    A read has no race to lose (only a commit can be decided again), so an abort of a
    read means the database could not serve it: on a Galera node cut off from the
    cluster, the wait for the cluster's latest commits (``wsrep_sync_wait``) ends in a
    lock wait timeout."""
    code = error_code(error)
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
