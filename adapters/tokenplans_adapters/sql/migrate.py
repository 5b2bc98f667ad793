"""Create or upgrade tokenplans' schema with Alembic, safely from many processes at once.

Our migrations live in ``adapters/sql/migrations`` and record their revision in
``tokenplans_alembic_version``, so they never touch a host application's own
``alembic_version`` table. Concurrent callers (several server workers starting together,
parallel test runs) are serialised by a database lock held for the whole upgrade:
``pg_advisory_xact_lock`` on PostgreSQL, ``GET_LOCK`` on MySQL/MariaDB and the write lock
of ``BEGIN IMMEDIATE`` on SQLite; whoever comes second finds the schema at head.

Alembic is imported only to upgrade: a server checks its schema (readiness) by reading
the version table itself against :data:`HEAD_REVISION`, so a serving process does not
hold Alembic and Mako (about 10 MiB).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL

from tokenplans import StorageUnavailableError

from .engine import WRITE_OPTION, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "tokenplans_alembic_version"
#: The revision the newest migration records: what an up-to-date schema holds. A new
#: migration changes it (a test checks it is Alembic's head).
HEAD_REVISION = "0005"
_LOCK_NAME = "tokenplans_schema"
_PG_LOCK_KEY = 0x746F6B656E706C61  # "tokenpla": any fixed 64-bit key
_LOCK_TIMEOUT_S = 120


def alembic_config() -> Config:
    """The Alembic configuration of our migrations (for ``alembic`` commands in code)."""
    from alembic.config import Config  # noqa: PLC0415 - only to upgrade (module docstring)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_table", VERSION_TABLE)
    return config


@cache
def head_revisions() -> frozenset[str]:
    """The revision(s) this code's migrations end at, as Alembic reads them from the files
    (:data:`HEAD_REVISION` without Alembic)."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - only to upgrade

    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def schema_problem(conn: Connection) -> str | None:
    """``None`` when the schema recorded in ``tokenplans_alembic_version`` is at the head
    revision, else what is wrong and what to do (for readiness, which a user reads)."""
    current = current_revisions(conn)
    expected = frozenset({HEAD_REVISION})
    if current == expected:
        return None
    if not current:
        return "schema missing: run `tokenplans db upgrade`"
    return (
        f"schema at revision {', '.join(sorted(current))}, expected "
        f"{', '.join(sorted(expected))}: run `tokenplans db upgrade`"
    )


def current_revisions(conn: Connection) -> frozenset[str]:
    """The revision(s) ``tokenplans_alembic_version`` records; none without a schema."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return frozenset()
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608 - ours
    return frozenset(row[0] for row in rows)


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
    from alembic import command  # noqa: PLC0415 - only to upgrade

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
