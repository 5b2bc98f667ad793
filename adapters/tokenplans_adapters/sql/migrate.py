"""Create or upgrade tokenplans' schema with Alembic, safely from many processes at once.

Our migrations live in ``adapters/sql/migrations`` and record their revision in
``tokenplans_alembic_version``, so they never touch a host application's own
``alembic_version`` table. Concurrent callers (several server workers starting together,
parallel test runs) are serialised by a database lock held for the whole upgrade:
``pg_advisory_xact_lock`` on PostgreSQL, ``GET_LOCK`` on MySQL/MariaDB and the write lock
of ``BEGIN IMMEDIATE`` on SQLite; whoever comes second finds the schema at head.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL

from tokenplans import StorageUnavailableError

from .engine import WRITE_OPTION, make_engine

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "tokenplans_alembic_version"
_LOCK_NAME = "tokenplans_schema"
_PG_LOCK_KEY = 0x746F6B656E706C61  # "tokenpla": any fixed 64-bit key
_LOCK_TIMEOUT_S = 120


def alembic_config() -> Config:
    """The Alembic configuration of our migrations (for ``alembic`` commands in code)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_table", VERSION_TABLE)
    return config


@cache
def head_revisions() -> frozenset[str]:
    """The revision(s) this code's migrations end at: what an up-to-date schema records."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def schema_problem(conn: Connection) -> str | None:
    """``None`` when the schema recorded in ``tokenplans_alembic_version`` is at the head
    revision, else what is wrong and what to do (for readiness, which a user reads)."""
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    current = frozenset(context.get_current_heads())
    expected = head_revisions()
    if current == expected:
        return None
    if not current:
        return "schema missing: run `tokenplans db upgrade`"
    return (
        f"schema at revision {', '.join(sorted(current))}, expected "
        f"{', '.join(sorted(expected))}: run `tokenplans db upgrade`"
    )


def upgrade_schema(engine_or_url: Engine | str | URL) -> None:
    """Bring the database to the latest schema (``alembic upgrade head``); creates every
    table on an empty database and is a no-op on an up-to-date one."""
    if isinstance(engine_or_url, Engine):
        _upgrade(engine_or_url)
        return
    engine = make_engine(engine_or_url)
    try:
        _upgrade(engine)
    finally:
        engine.dispose()


def _upgrade(engine: Engine) -> None:
    config = alembic_config()
    try:
        with engine.connect() as conn:
            dialect = conn.dialect.name
            if dialect == "sqlite":
                conn.execution_options(**{WRITE_OPTION: True})
                conn.execute(text("SELECT 1"))  # autobegin: BEGIN IMMEDIATE
            elif dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            elif dialect in ("mysql", "mariadb"):
                _mysql_lock(conn)
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, "head")
                conn.commit()
            finally:
                if dialect in ("mysql", "mariadb"):
                    conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": _LOCK_NAME})
                    conn.commit()
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as error:
        raise StorageUnavailableError(f"cannot upgrade the schema: {error.orig}") from error


def _mysql_lock(conn: Connection) -> None:
    got = conn.execute(
        text("SELECT GET_LOCK(:name, :timeout)"),
        {"name": _LOCK_NAME, "timeout": _LOCK_TIMEOUT_S},
    ).scalar()
    if got != 1:
        raise StorageUnavailableError("another process held the schema lock for too long")
