"""Readiness tells the truth about the schema, and every 503 leaves its cause in the log.

A fresh SQLite file without ``tokenplans db upgrade`` answers every request with 503, so
readiness must say so too, naming what to do; and an outage must be visible in the log
without one line per failed request.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from db_backends import SQL_BACKENDS, backend_param, backend_url
from fake_monotonic import FakeMonotonic
from http_support import ALICE, build_app, identity
from sqlalchemy import Engine, event, make_url, text
from starlette.testclient import TestClient

from tokenplans import Account, PlanCatalog, StorageUnavailableError, TokenService
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.http import create_app
from tokenplans_adapters.http.errors import CauseLog
from tokenplans_adapters.main.app import build_app as build_configured_app
from tokenplans_adapters.main.config import Settings
from tokenplans_adapters.sql import SqlAccountStore, make_engine, upgrade_schema
from tokenplans_adapters.sql.migrate import VERSION_TABLE, head_revisions
from tokenplans_adapters.sql.schema import metadata

SCHEMA_MISSING = "schema missing: run `tokenplans db upgrade`"


@pytest.fixture
def fresh_engine(tmp_path: Path) -> Iterator[Engine]:
    """A brand-new SQLite file: no tables at all."""
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    yield engine
    engine.dispose()


def _client(engine: Engine) -> TestClient:
    store = SqlAccountStore(engine, clock_source="process")
    service = TokenService(store, PlanCatalog.default(), SettableClock())
    return TestClient(create_app(service, identity(), readiness=store.check_ready))


def test_readiness_is_503_on_a_database_without_the_schema(fresh_engine: Engine) -> None:
    client = _client(fresh_engine)

    ready = client.get("/api/health/ready")
    consume = client.post("/api/tokens/consume", headers=ALICE, json={"amount": 1})

    assert (ready.status_code, ready.json()) == (
        503,
        {
            "error": "database not ready",
            "status": "unavailable",
            "database": "not ready",
            "message": SCHEMA_MISSING,
        },
    )
    assert consume.status_code == 503  # what readiness now predicts


def test_readiness_is_200_once_the_schema_is_upgraded(fresh_engine: Engine) -> None:
    client = _client(fresh_engine)
    before = client.get("/api/health/ready")

    upgrade_schema(fresh_engine)

    after = client.get("/api/health/ready")
    again = client.get("/api/health/ready")  # the cached path: a round-trip only
    assert (before.status_code, after.status_code, again.status_code) == (503, 200, 200)
    assert after.json() == {"status": "ok", "database": "ok"}


def test_readiness_names_the_revision_of_an_outdated_schema(fresh_engine: Engine) -> None:
    upgrade_schema(fresh_engine)
    with fresh_engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'r0000_old'"))  # noqa: S608
    (head,) = head_revisions()

    response = _client(fresh_engine).get("/api/health/ready")

    assert response.status_code == 503
    assert response.json()["message"] == (
        f"schema at revision r0000_old, expected {head}: run `tokenplans db upgrade`"
    )


def test_the_asgi_factory_app_is_not_ready_before_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'factory.sqlite3'}"
    settings = Settings(database_url=url, jwt_secret="s" * 48)

    with TestClient(build_configured_app(settings)) as client:
        before = client.get("/api/health/ready")
        upgrade_schema(url)
        after = client.get("/api/health/ready")

    assert (before.status_code, before.json()["message"]) == (503, SCHEMA_MISSING)
    assert after.status_code == 200


def test_a_schema_problem_is_logged_at_warning(
    fresh_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(fresh_engine)

    with caplog.at_level(logging.WARNING, logger="tokenplans_adapters.http"):
        client.get("/api/health/ready")

    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert SCHEMA_MISSING in caplog.records[0].getMessage()


# -- every 503 logs its cause --------------------------------------------------------------


class DownStore(InMemoryStore):
    """Every read fails as a lost database would."""

    def load(self, subject: str) -> Account | None:
        raise StorageUnavailableError("database unavailable: connection refused (10.0.0.5)")


def _unavailable_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("503 on")]


def test_a_store_failure_logs_its_cause_at_warning_but_does_not_echo_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = TestClient(build_app(DownStore()))

    with caplog.at_level(logging.WARNING, logger="tokenplans_adapters.http"):
        response = client.get("/api/tokens/usage", headers=ALICE)

    (record,) = caplog.records
    assert (response.status_code, response.json()) == (503, {"error": "database unavailable"})
    assert record.levelno == logging.WARNING
    assert "StorageUnavailableError: database unavailable: connection refused" in (
        record.getMessage()
    )
    assert "GET /api/tokens/usage" in record.getMessage()
    assert "10.0.0.5" not in response.text


def test_a_readiness_failure_logs_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    def probe() -> None:
        raise StorageUnavailableError("database unavailable: no route to host")

    client = TestClient(build_app(readiness=probe))

    with caplog.at_level(logging.WARNING, logger="tokenplans_adapters.http"):
        response = client.get("/api/health/ready")

    assert response.status_code == 503
    assert _unavailable_lines(caplog) == [
        "503 on GET /api/health/ready (request id "
        f"{response.headers['X-Request-ID']}): "
        "StorageUnavailableError: database unavailable: no route to host"
    ]


def test_an_outage_logs_one_line_per_cause_per_ten_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = build_app(DownStore())
    clock = FakeMonotonic()
    app.state.unavailable_log.clock = clock
    client = TestClient(app)

    with caplog.at_level(logging.WARNING, logger="tokenplans_adapters.http"):
        for _ in range(50):
            client.get("/api/tokens/usage", headers=ALICE)
        clock.now += 9.9
        client.get("/api/tokens/usage", headers=ALICE)
        first_window = _unavailable_lines(caplog)
        clock.now += 0.2
        client.get("/api/tokens/usage", headers=ALICE)

    lines = _unavailable_lines(caplog)
    assert len(first_window) == 1
    assert len(lines) == 2
    assert lines[1].endswith("(50 more like it in the last 10 s)")


def test_the_rate_limit_is_per_cause() -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    log = logging.Logger("tests.cause_log")  # not registered: nothing leaks to other tests
    log.addHandler(Collect())
    cause_log = CauseLog(log, interval=10.0, clock=FakeMonotonic())

    logged = [
        cause_log.log_once(logging.WARNING, cause, "%s", cause)
        for cause in ("down", "down", "busy", "down", "busy")
    ]

    assert logged == [True, False, True, False, False]
    assert records == ["down", "busy"]


def test_the_last_burst_of_an_outage_is_reported_on_a_line_of_its_own() -> None:
    """Repeats after a cause's last line used to wait for that cause's next line, which
    an outage that ended never has: they are reported once the interval is over, by the
    next line of any cause, or when readiness finds the database back (``flush``)."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    log = logging.Logger("tests.cause_log_burst")
    log.addHandler(Collect())
    clock = FakeMonotonic()
    cause_log = CauseLog(log, interval=10.0, clock=clock)

    for _ in range(4):  # the last burst of "down": one line, three repeats
        cause_log.log_once(logging.WARNING, "down", "%s", "down")
    clock.now += 11
    cause_log.log_once(logging.WARNING, "busy", "%s", "busy")  # another cause, later
    cause_log.log_once(logging.WARNING, "busy", "%s", "busy")
    cause_log.flush()  # readiness: the database answers again

    assert records == [
        "down",
        "503 cause down: 3 more like it in the 11 s after its last line",
        "busy",
        "503 cause busy: 1 more like it in the 0 s after its last line",
    ]


# -- a table gone from under a running server ---------------------------------------------


@pytest.fixture(params=[backend_param(backend) for backend in SQL_BACKENDS])
def throwaway_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, whose tables it may drop: a fresh SQLite file; on
    PostgreSQL a schema of its own (through ``search_path``), on MariaDB/MySQL a
    database of its own, beside the one the other tests share and dropped after."""
    backend: str = request.param
    url = make_url(backend_url(backend, tmp_path))
    if backend == "sqlite":
        yield url.render_as_string(hide_password=False)
        return
    name = f"{url.database}_ready_{secrets.token_hex(4)}"
    admin = make_engine(url)
    create, drop = (
        (f"CREATE SCHEMA {name}", f"DROP SCHEMA {name} CASCADE")
        if backend == "postgres"
        else (f"CREATE DATABASE {name}", f"DROP DATABASE {name}")
    )
    with admin.begin() as conn:
        conn.execute(text(create))
    own = (
        url.update_query_dict({"options": f"-csearch_path={name}"})
        if backend == "postgres"
        else url.set(database=name)
    )
    try:
        yield own.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(drop))
        admin.dispose()


@pytest.mark.parametrize("table", ["tokenplans_accounts", "tokenplans_holds"])
def test_readiness_is_503_naming_a_table_dropped_under_a_ready_server(
    throwaway_url: str, table: str
) -> None:
    engine = make_engine(throwaway_url)
    try:
        upgrade_schema(engine)
        client = _client(engine)
        before = client.get("/api/health/ready")  # the schema is current: remembered

        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {table}"))
        after = client.get("/api/health/ready")
    finally:
        engine.dispose()

    assert before.status_code == 200
    assert (after.status_code, after.json()) == (
        503,
        {
            "error": "database not ready",
            "status": "unavailable",
            "database": "not ready",
            "message": f"table {table} is missing or cannot be read",
        },
    )


def test_readiness_reads_every_table_in_one_statement(fresh_engine: Engine) -> None:
    upgrade_schema(fresh_engine)
    store = SqlAccountStore(fresh_engine, clock_source="process")
    assert store.check_ready() is None  # the schema is now known to be current
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(fresh_engine, "before_cursor_execute", count)
    try:
        assert store.check_ready() is None
    finally:
        event.remove(fresh_engine, "before_cursor_execute", count)

    (statement,) = statements
    assert all(table.name in statement for table in metadata.sorted_tables)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of its own (root only; skipped elsewhere, but never in CI)."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(  # noqa: S603 - fixed arguments
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],  # noqa: S607
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        message = f"cannot mount a small tmpfs: {mounted.stderr.decode().strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)  # noqa: S603, S607


def test_readiness_is_503_when_the_sqlite_disk_is_full_and_200_once_there_is_room(
    small_disk: Path,
) -> None:
    engine = make_engine(f"sqlite:///{small_disk / 'ledger.sqlite3'}")
    try:
        upgrade_schema(engine)
        client = _client(engine)
        assert client.get("/api/health/ready").status_code == 200

        filler = small_disk / "filler"
        with filler.open("wb") as fill:
            try:
                while True:
                    fill.write(b"\0" * 65536)
                    fill.flush()
            except OSError:
                pass  # the disk is full
        full = client.get("/api/health/ready")
        filler.unlink()
        again = client.get("/api/health/ready")

        assert full.status_code == 503
        assert full.json()["error"] == "database not ready"
        assert "disk holding the SQLite database is full" in full.json()["message"]
        assert again.status_code == 200
    finally:
        engine.dispose()
