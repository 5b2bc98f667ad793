"""``tokenplans db upgrade``: create or migrate the schema (``serve`` runs the same
upgrade, in a process of its own)."""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from tokenplans import StorageUnavailableError
from tokenplans_adapters.main.config import Settings
from tokenplans_adapters.main.engines import masked, open_engine
from tokenplans_adapters.sql import metadata, upgrade_schema
from tokenplans_adapters.sql.migrate import VERSION_TABLE, current_revisions

from .base import Commands


def add(commands: Commands) -> None:
    parser = commands.add_parser("db", help="database schema commands")
    actions = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade",
        help="create or migrate the tables",
        description="Create the tokenplans_ tables, or migrate them to the latest schema.",
    )
    upgrade.set_defaults(handler=_db_upgrade)


def _db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    before, after = upgrade(settings)
    database = masked(settings.database_url)
    if before is None:
        tables = ", ".join([*metadata.tables, VERSION_TABLE])
        print(f"created the schema at revision {after} in {database}: tables {tables}")
    elif before != after:
        print(f"migrated the schema from revision {before} to {after} in {database}")
    else:
        print(f"schema is up to date (revision {after}): {database}")
    return 0


def upgrade(settings: Settings) -> tuple[str | None, str | None]:
    """Create or migrate the schema; the revisions before (``None``: no schema yet) and
    after."""
    engine = open_engine(settings, migrating=True)
    try:
        before = revision(engine)
        upgrade_schema(engine)
        return before, revision(engine)
    finally:
        engine.dispose()


def upgrade_apart(settings: Settings) -> None:
    """:func:`upgrade` in a short-lived process of its own. With one worker, uvicorn
    serves in this very process, which should not keep Alembic and Mako (about 10 MiB)
    for the rest of its life after one use; a failure is raised here all the same."""
    spawned = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawned) as upgrader:
        upgrader.submit(upgrade, settings).result()


def revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return max(current_revisions(conn), default=None)  # one line of migrations
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as error:
        raise StorageUnavailableError(f"cannot read the schema: {error.orig}") from error
