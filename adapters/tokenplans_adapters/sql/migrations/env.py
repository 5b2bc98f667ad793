"""Alembic environment for tokenplans' own schema.

Run through :func:`tokenplans_adapters.sql.upgrade_schema`, which passes an open connection in
``config.attributes["connection"]``; without one (the ``alembic`` CLI) it connects to
``sqlalchemy.url`` from the Alembic config.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from tokenplans_adapters.sql.engine import make_engine
from tokenplans_adapters.sql.schema import metadata

VERSION_TABLE = "tokenplans_alembic_version"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "set sqlalchemy.url, or call tokenplans_adapters.sql.upgrade_schema(url)"
        )
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
