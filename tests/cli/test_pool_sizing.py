"""The connection pool of a PostgreSQL or MySQL/MariaDB database: its size is a setting,
the engine gets it, the server's workers get it, and ``serve`` says how many connections
it may open in all (each worker has a pool of its own; a database refuses clients past
its limit, which is 100 by default on PostgreSQL). SQLite's pool stays sized to the
server's threads.

No test here connects: an engine opens no connection until it is used, and ``serve``'s
schema upgrade (a separate process) is replaced by a no-op where the URL points nowhere.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

from tokenplans_adapters.http import offload
from tokenplans_adapters.main import Settings
from tokenplans_adapters.main.app import (
    SQLITE_STORE_THREADS,
    build_app,
    build_engine,
    store_threads,
)
from tokenplans_adapters.main.asgi import create
from tokenplans_adapters.main.cli import main
from tokenplans_adapters.main.commands import serve

POSTGRES = "postgresql+psycopg://app:pw@127.0.0.1:1/app"
MYSQL = "mysql+pymysql://app:pw@127.0.0.1:1/app"
SECRET = "a-secret-that-is-long-enough-for-hs256-0123456789"


def limits(engine: Engine) -> tuple[int, int]:
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    # QueuePool keeps max_overflow only privately; size() is public.
    return pool.size(), pool._max_overflow


@pytest.mark.parametrize(("url", "default"), [(POSTGRES, (10, 0)), (MYSQL, (8, 0))])
def test_a_server_database_gets_the_configured_pool_or_its_default(
    url: str, default: tuple[int, int]
) -> None:
    engines = [
        build_engine(Settings(database_url=url)),
        build_engine(Settings(database_url=url, db_pool_size=3, db_max_overflow=0)),
        build_engine(Settings(database_url=url, db_max_overflow=7)),
    ]
    try:
        assert [limits(engine) for engine in engines] == [default, (3, 0), (default[0], 7)]
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.parametrize(
    ("url", "pool_size", "threads"),
    [
        (POSTGRES, None, 10),
        (POSTGRES, 4, 4),
        (MYSQL, None, 8),
        ("sqlite:///./pool.sqlite3", None, SQLITE_STORE_THREADS),
        ("sqlite:///./pool.sqlite3", 3, 3),
    ],
)
def test_the_storage_threads_are_as_many_as_the_pool_keeps_connections(
    workdir: Any, url: str, pool_size: int | None, threads: int
) -> None:
    """So that in steady state no storage thread waits for a connection, and no request
    opens one: the pool has no overflow to open."""
    settings = Settings(database_url=url, db_pool_size=pool_size)
    engine = build_engine(settings)
    try:
        assert store_threads(settings) == threads
        assert limits(engine) == (threads, 0)
    finally:
        engine.dispose()


def test_the_server_s_app_runs_its_storage_calls_on_that_many_threads(
    workdir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ASGI factory every ``tokenplans serve`` worker calls sizes the process's pool
    of storage threads (an app built in a test process leaves it alone)."""
    monkeypatch.setenv("TOKENPLANS_DATABASE_URL", "sqlite:///./threads.sqlite3")
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", SECRET)
    monkeypatch.setenv("TOKENPLANS_DB_POOL_SIZE", "3")
    saved = offload.threads()
    try:
        build_app(Settings.from_env(env_file=None))
        assert offload.threads() == saved
        create()
        assert offload.threads() == 3

        async def threads_used() -> set[int]:
            # Twelve calls, each waiting until two others have come: three threads are
            # enough for all (in four groups), and with more each would get its own.
            gate = threading.Barrier(3, timeout=30)

            def call() -> int:
                gate.wait()
                return threading.get_ident()

            return set(await asyncio.gather(*(offload.in_thread(call) for _ in range(12))))

        assert len(asyncio.run(threads_used())) == 3
    finally:
        offload.use_threads(saved)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, str]]]:
    """``serve`` without a server: no schema upgrade, and ``uvicorn.run`` records the
    environment its workers would read (put back afterwards)."""
    saved = dict(os.environ)
    runs: list[dict[str, str]] = []
    monkeypatch.setattr(serve, "upgrade_apart", lambda _settings: None)
    monkeypatch.setattr(uvicorn, "run", lambda *_a, **_k: runs.append(dict(os.environ)))
    yield runs
    os.environ.clear()
    os.environ.update(saved)


def test_serve_says_how_many_connections_its_workers_may_open_and_hands_them_the_pool(
    monkeypatch: pytest.MonkeyPatch,
    served: list[dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", SECRET)
    monkeypatch.setenv("TOKENPLANS_DATABASE_URL", POSTGRES)
    monkeypatch.setenv("TOKENPLANS_DB_POOL_SIZE", "6")
    monkeypatch.setenv("TOKENPLANS_DB_MAX_OVERFLOW", "4")

    assert main(["serve", "--port", "18768", "--workers", "4"]) == 0

    err = capsys.readouterr().err
    assert (
        "tokenplans: database postgresql+psycopg://app:***@127.0.0.1:1/app: up to 10 "
        "connections per worker (TOKENPLANS_DB_POOL_SIZE 6 + TOKENPLANS_DB_MAX_OVERFLOW 4) "
        "x 4 workers = up to 40\n"
    ) in err
    workers = Settings.from_env(served[0], env_file=None)
    assert (workers.db_pool_size, workers.db_max_overflow) == (6, 4)


def test_serve_with_one_worker_and_the_defaults_says_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
    served: list[dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", SECRET)
    monkeypatch.setenv("TOKENPLANS_DATABASE_URL", POSTGRES)

    assert main(["serve", "--port", "18769"]) == 0

    assert (
        "up to 10 connections per worker (TOKENPLANS_DB_POOL_SIZE 10 + "
        "TOKENPLANS_DB_MAX_OVERFLOW 0)\n"
    ) in capsys.readouterr().err
    workers = Settings.from_env(served[0], env_file=None)
    assert (workers.db_pool_size, workers.db_max_overflow) == (None, None)


def test_the_dev_banner_says_the_connections_too(
    monkeypatch: pytest.MonkeyPatch,
    served: list[dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOKENPLANS_DATABASE_URL", MYSQL)

    assert main(["serve", "--dev", "--port", "18770", "--workers", "2"]) == 0

    out = capsys.readouterr().out
    assert "  database: mysql+pymysql://app:***@127.0.0.1:1/app\n" in out
    assert (
        "            up to 8 connections per worker (TOKENPLANS_DB_POOL_SIZE 8 + "
        "TOKENPLANS_DB_MAX_OVERFLOW 0) x 2 workers = up to 16\n"
    ) in out


def test_serve_on_sqlite_says_nothing_about_connections(
    monkeypatch: pytest.MonkeyPatch,
    served: list[dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", SECRET)

    assert main(["serve", "--port", "18771", "--workers", "2"]) == 0

    assert "connections" not in capsys.readouterr().err
