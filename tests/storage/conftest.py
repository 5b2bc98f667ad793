"""Stores for the storage contract suite: in-memory, SQLite, MariaDB/MySQL, PostgreSQL, and
each node of a MariaDB Galera cluster (``galera``-marked; ``tests/db_backends.py``).

The SQL servers come from ``TOKENPLANS_TEST_POSTGRES_URL`` / ``TOKENPLANS_TEST_MYSQL_URL``:
unset means skip (a newcomer's laptop has SQLite only); set but unreachable means the
tests error, never skip. Databases are shared with other concurrent test runs, so the
schema is upgraded idempotently (never dropped) and every test works on fresh uuid
subjects, order ids and event ids.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from db_backends import GALERA_NODES, SQL_BACKENDS, backend_param
from sqlalchemy import Engine

from tokenplans import AccountStore
from tokenplans.testing import InMemoryStore
from tokenplans_adapters.sql import SqlAccountStore


@pytest.fixture(params=[backend_param(b) for b in ["memory", *SQL_BACKENDS, *GALERA_NODES]])
def store(request: pytest.FixtureRequest, engine_for: Callable[[str], Engine]) -> AccountStore:
    """Each implementation of the storage port in turn (the contract suite's subject)."""
    if request.param == "memory":
        return InMemoryStore()
    return SqlAccountStore(engine_for(request.param), clock_source="process")


@pytest.fixture(params=[backend_param(b) for b in SQL_BACKENDS])
def sql_store(
    request: pytest.FixtureRequest, engine_for: Callable[[str], Engine]
) -> SqlAccountStore:
    """Each SQL store (for what only a database can show: plans, faults, plain SQL)."""
    return SqlAccountStore(engine_for(request.param), clock_source="process")
