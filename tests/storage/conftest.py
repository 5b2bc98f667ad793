"""Stores for the storage contract suite: in-memory, SQLite, MariaDB/MySQL and PostgreSQL.

The SQL servers come from ``TOKENPLANS_TEST_POSTGRES_URL`` / ``TOKENPLANS_TEST_MYSQL_URL``:
unset means skip (a newcomer's laptop has SQLite only); set but unreachable means the
tests error, never skip. Databases are shared with other concurrent test runs, so the
schema is upgraded idempotently (never dropped) and every test works on fresh uuid
subjects, order ids and event ids.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adapters.sql import SqlAccountStore, make_engine, upgrade_schema
from tokenplans import AccountStore
from tokenplans.testing import InMemoryStore

URL_VARIABLES = {
    "postgres": "TOKENPLANS_TEST_POSTGRES_URL",
    "mysql": "TOKENPLANS_TEST_MYSQL_URL",
}
SQL_BACKENDS = ["sqlite", "mysql", "postgres"]


def backend_url(backend: str, tmp_dir: Path) -> str:
    """The URL to test ``backend`` at, or skip the test when its variable is unset."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / 'tokenplans.db'}"
    url = os.environ.get(URL_VARIABLES[backend], "")
    if not url:
        pytest.skip(f"{URL_VARIABLES[backend]} is not set")
    return url


def _marks(backend: str) -> list[pytest.MarkDecorator]:
    return [getattr(pytest.mark, backend)] if backend in URL_VARIABLES else []


@pytest.fixture(scope="session")
def engines() -> Iterator[dict[str, Engine]]:
    """One engine per backend for the session, built lazily, schema upgraded once."""
    built: dict[str, Engine] = {}
    yield built
    for engine in built.values():
        engine.dispose()


@pytest.fixture(scope="session")
def engine_for(
    engines: dict[str, Engine], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Engine]:
    def get(backend: str) -> Engine:
        if backend not in engines:
            url = backend_url(backend, tmp_path_factory.mktemp(f"db-{backend}"))
            engine = make_engine(url)
            upgrade_schema(engine)
            engines[backend] = engine
        return engines[backend]

    return get


@pytest.fixture(
    params=[pytest.param(b, marks=_marks(b)) for b in ["memory", *SQL_BACKENDS]],
)
def store(request: pytest.FixtureRequest, engine_for: Callable[[str], Engine]) -> AccountStore:
    """Each implementation of the storage port in turn (the contract suite's subject)."""
    if request.param == "memory":
        return InMemoryStore()
    return SqlAccountStore(engine_for(request.param))


@pytest.fixture(params=[pytest.param(b, marks=_marks(b)) for b in SQL_BACKENDS])
def sql_store(
    request: pytest.FixtureRequest, engine_for: Callable[[str], Engine]
) -> SqlAccountStore:
    """Each SQL store (for what only a database can show: plans, faults, plain SQL)."""
    return SqlAccountStore(engine_for(request.param))
