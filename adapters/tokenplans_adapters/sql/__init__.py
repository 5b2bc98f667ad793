"""Storage on SQL databases: SQLite (embedded default), PostgreSQL and MySQL/MariaDB.

``make_engine`` builds an engine with per-dialect defaults, ``upgrade_schema`` creates or
migrates the ``tokenplans_`` tables, and ``SqlAccountStore`` implements the core's
:class:`~tokenplans.ports.AccountStore` on them. ``metadata`` is for a host application's
own Alembic.
"""

from .engine import make_engine, server_pool
from .migrate import upgrade_schema
from .schema import metadata
from .store import SqlAccountStore

__all__ = ["SqlAccountStore", "make_engine", "metadata", "server_pool", "upgrade_schema"]
