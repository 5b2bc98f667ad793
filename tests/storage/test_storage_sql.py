"""What only a real database can show: the migrated schema, the engine defaults, the rows
as plain SQL sees them, and that reading usage costs one indexed row whatever the ledger."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, bindparam, inspect, text, update
from sqlalchemy.exc import OperationalError
from storage_support import (
    bulk_load_account,
    delete_account,
    new_subject,
    recorded_statements,
    service_over,
)

from tokenplans import Account, Principal
from tokenplans.ports import WriteConflictError
from tokenplans_adapters.sql import SqlAccountStore, make_engine, metadata, upgrade_schema
from tokenplans_adapters.sql.migrate import HEAD_REVISION, VERSION_TABLE, head_revisions
from tokenplans_adapters.sql.schema import ExactText, accounts, ledger_entries, snapshot_columns

SQL = [
    "sqlite",
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
EngineFor = Callable[[str], Engine]


@pytest.mark.parametrize("backend", SQL)
def test_the_migrated_schema_is_exactly_the_published_metadata(
    backend: str, engine_for: EngineFor
) -> None:
    with engine_for(backend).connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        differences = [d for d in compare_metadata(context, metadata) if _ours(d)]
    assert differences == []


def test_the_accounts_row_and_the_ledgers_after_snapshot_are_the_accounts_fields() -> None:
    snapshot = {field.name for field in attrs.fields(Account)} - {"subject", "version"}
    helper = [column.name for column in snapshot_columns()]

    assert set(helper) == snapshot
    assert [c.name for c in accounts.columns] == ["subject", *helper, "version"]
    assert [c.name for c in ledger_entries.columns][-len(helper) :] == helper


def _ours(difference: object) -> bool:
    # The database is shared: other tables (another project's, a host app's) are not ours.
    return "tokenplans_" in repr(difference)


def test_a_fresh_database_upgraded_by_eight_processes_at_once_gets_one_schema(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: upgrade_schema(url), range(8)))
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            versions = conn.execute(
                text("SELECT version_num FROM tokenplans_alembic_version")
            ).all()
    finally:
        engine.dispose()
    assert {t.name for t in metadata.sorted_tables} <= tables
    assert [tuple(v) for v in versions] == [(revision,) for revision in head_revisions()]


def test_a_first_connection_waits_while_another_writes_to_a_database_not_yet_in_wal(
    tmp_path: Path,
) -> None:
    # SQLite refuses the switch to WAL at once ("database is locked") while another
    # connection holds a transaction on a rollback-journal file: what eight first users
    # of a fresh database at once once hit in CI.
    path = tmp_path / "fresh.db"
    writing, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("CREATE TABLE elsewhere (x)")
        writing.set()
        release.wait(30)
        raw.execute("COMMIT")
        raw.close()

    writer = threading.Thread(target=other_writer)
    writer.start()
    writing.wait(30)
    threading.Timer(0.3, release.set).start()
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()
    finally:
        engine.dispose()
        release.set()
        writer.join(30)

    assert mode == "wal"


def test_the_head_revision_readiness_expects_is_the_newest_migration() -> None:
    # Readiness compares the schema with HEAD_REVISION without loading Alembic: a new
    # migration must move it.
    assert head_revisions() == {HEAD_REVISION}


@pytest.mark.parametrize("backend", SQL)
def test_upgrading_an_up_to_date_schema_concurrently_is_harmless(
    backend: str, engine_for: EngineFor
) -> None:
    engine = engine_for(backend)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: upgrade_schema(engine), range(4)))
    SqlAccountStore(engine, clock_source="process").ping()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
            }
    finally:
        engine.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "foreign_keys": 1,
        "synchronous": 2,  # FULL: a commit acknowledged survives a power loss
    }


def test_sqlite_synchronous_can_be_relaxed_to_normal(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'normal.db'}", sqlite_synchronous="normal")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    finally:
        engine.dispose()
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        make_engine(f"sqlite:///{tmp_path / 'off.db'}", sqlite_synchronous="OFF")


def test_a_sqlite_write_transaction_takes_the_write_lock_at_begin(tmp_path: Path) -> None:
    """``BEGIN IMMEDIATE`` is really sent: a second writer cannot even begin meanwhile."""
    url = f"sqlite:///{tmp_path / 'immediate.db'}"
    upgrade_schema(url)
    first = make_engine(url)
    second = make_engine(url, connect_args={"timeout": 0.05})
    try:
        with first.connect() as holder, second.connect() as other:
            holder.execution_options(tokenplans_write=True)
            other.execution_options(tokenplans_write=True)
            holder.begin()
            with pytest.raises(OperationalError, match="locked"):
                other.begin()
            holder.rollback()
    finally:
        first.dispose()
        second.dispose()


def test_a_sqlite_read_sends_no_begin_and_its_connections_are_pooled(tmp_path: Path) -> None:
    """Reads are one statement each: no BEGIN; and the pool is the thread pool's size,
    so connections are reused under load instead of opened and closed per request."""
    url = f"sqlite:///{tmp_path / 'reads.db'}"
    upgrade_schema(url)
    engine = make_engine(url)
    store = SqlAccountStore(engine, clock_source="process")
    try:
        service_over(store).consume(Principal("alice"), 1)
        with recorded_statements(engine) as seen:
            store.load("alice")
        assert len(seen) == 1
        assert seen[0][0].startswith("SELECT")
        assert engine.pool.size() == 40  # type: ignore[attr-defined]
    finally:
        engine.dispose()


@pytest.mark.mysql
def test_mysql_defaults_are_read_committed_and_utf8mb4(engine_for: EngineFor) -> None:
    engine = engine_for("mysql")
    with engine.connect() as conn:
        assert conn.get_isolation_level() == "READ COMMITTED"
        assert conn.exec_driver_sql("SELECT @@character_set_client").scalar() == "utf8mb4"
    # No ping per checkout (only after idling: test_storage_faults), no overflow.
    assert not engine.pool._pre_ping  # type: ignore[attr-defined]
    assert engine.pool.size() == 8  # type: ignore[attr-defined]
    assert engine.pool._max_overflow == 0  # type: ignore[attr-defined]
    assert engine.pool._recycle == 3600  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_postgres_defaults_a_pool_of_ten_without_overflow_or_a_ping_per_checkout(
    engine_for: EngineFor,
) -> None:
    engine = engine_for("postgres")
    assert not engine.pool._pre_ping  # type: ignore[attr-defined]
    assert engine.pool.size() == 10  # type: ignore[attr-defined]
    assert engine.pool._max_overflow == 0  # type: ignore[attr-defined]
    assert engine.pool._recycle == 3600  # type: ignore[attr-defined]
    with engine.connect() as conn:
        assert conn.get_isolation_level() == "READ COMMITTED"


@pytest.mark.parametrize("backend", SQL)
def test_engine_defaults_give_way_to_explicit_settings(backend: str, engine_for: EngineFor) -> None:
    url = engine_for(backend).url
    engine = make_engine(url, pool_size=2, max_overflow=0, isolation_level="SERIALIZABLE")
    try:
        with engine.connect() as conn:
            assert conn.get_isolation_level() == "SERIALIZABLE"
        assert engine.pool.size() == 2  # type: ignore[attr-defined]
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", SQL)
def test_an_update_that_matches_a_row_counts_it_even_when_nothing_changes(
    backend: str, engine_for: EngineFor
) -> None:
    """The compare-and-write trusts rowcount as *matched* rows (MySQL needs FOUND_ROWS)."""
    engine = engine_for(backend)
    subject = new_subject()
    service_over(SqlAccountStore(engine, clock_source="process")).consume(Principal(subject), 1)
    with engine.begin() as conn:
        result = conn.execute(
            update(accounts).where(accounts.c.subject == subject).values(token_used=1)
        )
    assert result.rowcount == 1


@pytest.mark.parametrize("backend", SQL)
def test_a_debit_is_visible_to_plain_sql_as_one_snapshot_row_ledger_rows_and_a_receipt(
    backend: str, engine_for: EngineFor
) -> None:
    engine = engine_for(backend)
    subject = new_subject()
    service_over(SqlAccountStore(engine, clock_source="process")).consume(
        Principal(subject), 250, idempotency_key="k"
    )
    by_subject = bindparam("s", type_=ExactText())
    with engine.connect() as conn:
        snapshot = conn.execute(
            text(
                "SELECT plan_id, token_quota, token_used, version FROM tokenplans_accounts"
                " WHERE subject = :s"
            ).bindparams(by_subject),
            {"s": subject},
        ).one()
        ledger = conn.execute(
            text(
                "SELECT version, kind, used_delta FROM tokenplans_ledger_entries"
                " WHERE subject = :s ORDER BY version"
            ).bindparams(by_subject),
            {"s": subject},
        ).all()
        receipt = conn.execute(
            text(
                "SELECT amount, version FROM tokenplans_debit_receipts"
                " WHERE subject = :s AND idempotency_key = 'k'"
            ).bindparams(by_subject),
            {"s": subject},
        ).one()
    assert tuple(snapshot) == ("basic", 1000, 250, 2)
    assert [tuple(row) for row in ledger] == [(1, "opened", 0), (2, "debited", 250)]
    assert tuple(receipt) == (250, 2)


@pytest.mark.parametrize("backend", SQL)
def test_an_entrys_facts_are_one_json_object_plain_sql_can_read(
    backend: str, engine_for: EngineFor
) -> None:
    engine = engine_for(backend)
    subject = new_subject()
    tokens = service_over(SqlAccountStore(engine, clock_source="process"))
    tokens.consume(Principal(subject), 5, idempotency_key="k-7")
    tokens.reserve(Principal(subject), 10, hold_id="h-1")
    tokens.settle(Principal(subject), "h-1", 12)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, facts FROM tokenplans_ledger_entries WHERE subject = :s"
                " ORDER BY version"
            ).bindparams(bindparam("s", type_=ExactText())),
            {"s": subject},
        ).all()

    # PostgreSQL's driver parses json; the others hand back its text.
    facts = [(kind, json.loads(v) if isinstance(v, str | bytes) else v) for kind, v in rows]
    assert facts == [
        ("opened", None),
        ("debited", {"idempotency_key": "k-7"}),
        ("hold_placed", {"hold_id": "h-1", "overage": None}),
        ("hold_settled", {"hold_id": "h-1", "overage": 0}),
    ]


# -- scale --------------------------------------------------------------------------------


def _usage_statements(engine: Engine, subject: str) -> tuple[int, list[tuple[str, Any]]]:
    tokens = service_over(SqlAccountStore(engine, clock_source="process"))
    with recorded_statements(engine) as seen:
        remaining = tokens.usage(Principal(subject)).remaining
    # Transaction control (SQLite's BEGIN, sent by the engine's hook) is not a query.
    return remaining, [(statement, p) for statement, p in seen if statement != "BEGIN"]


def _plan(engine: Engine, statement: str, parameters: object) -> str:
    dialect = engine.dialect.name
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()  # type: ignore[arg-type]
    return "\n".join(" ".join(str(value) for value in row) for row in rows)


@pytest.mark.slow
@pytest.mark.parametrize("backend", SQL)
def test_usage_of_an_account_with_a_million_entries_is_one_indexed_row_read(
    backend: str, engine_for: EngineFor
) -> None:
    engine = engine_for(backend)
    big, small = new_subject("million"), new_subject("ten")
    try:
        big_account = bulk_load_account(engine, big, 1_000_000)
        small_account = bulk_load_account(engine, small, 10)
        big_remaining, big_statements = _usage_statements(engine, big)
        small_remaining, small_statements = _usage_statements(engine, small)

        assert (big_remaining, small_remaining) == (big_account.remaining, small_account.remaining)
        # The same single statement, whatever the ledger holds: the snapshot's row, and of
        # the ledger only the last entry's instant, by its primary key (subject, version).
        assert [s for s, _ in big_statements] == [s for s, _ in small_statements]
        assert len(big_statements) == 1
        assert "tokenplans_accounts" in big_statements[0][0]
        plan = _plan(engine, *big_statements[0])
        ledger = [line for line in plan.splitlines() if "tokenplans_ledger_entries" in line]
        if engine.dialect.name == "sqlite":
            assert any("(subject=? AND version=?)" in line for line in ledger), plan
        elif engine.dialect.name == "postgresql":
            assert "Index Scan using pk_tokenplans_ledger_entries" in plan, plan
            assert "Seq Scan" not in plan, plan
        else:
            assert any(" PRIMARY " in line and " const" in line for line in ledger), plan

        # A history page is one range scan of the ledger's primary key, not a table scan.
        store = SqlAccountStore(engine, clock_source="process")
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE tokenplans_ledger_entries")
        with recorded_statements(engine) as seen:
            page = store.history(big, before_version=500_000, limit=50)
        assert [e.version for e in page] == list(range(499_999, 499_949, -1))
        plan = _plan(engine, *next(s for s in seen if s[0] != "BEGIN"))
        if engine.dialect.name == "sqlite":
            assert "USING PRIMARY KEY" in plan or "USING INDEX" in plan, plan
        elif engine.dialect.name == "postgresql":
            assert "Index Scan" in plan or "Index Only Scan" in plan, plan
        else:
            assert "PRIMARY" in plan, plan
    finally:
        for subject in (big, small):
            delete_account(engine, subject)


@pytest.mark.parametrize("backend", SQL)
def test_a_receipt_lookup_reads_the_ledger_only_on_a_replay(
    backend: str, engine_for: EngineFor
) -> None:
    engine = engine_for(backend)
    store = SqlAccountStore(engine, clock_source="process")
    subject = new_subject()
    service_over(store).consume(Principal(subject), 5, idempotency_key="once")

    def statements(key: str) -> list[str]:
        with recorded_statements(engine) as seen:
            store.find_receipt(subject, subject, key)
        return [statement for statement, _ in seen if statement != "BEGIN"]

    missed, replayed = statements("never-used"), statements("once")

    assert len(missed) == 1
    assert "tokenplans_ledger_entries" not in missed[0]
    assert len(replayed) == 2
    assert "tokenplans_ledger_entries" in replayed[1]


# -- deciding inside the row lock -----------------------------------------------------------


class _CountingConflicts:
    """Delegates to a store (its ``locked`` included) and counts the commits that lost."""

    def __init__(self, inner: SqlAccountStore) -> None:
        self.inner = inner
        self.commits = 0
        self.conflicts = 0

    def commit(self, commit: object) -> None:
        self.commits += 1
        try:
            self.inner.commit(commit)  # type: ignore[arg-type]
        except WriteConflictError:
            self.conflicts += 1
            raise

    def locked(self, subject: str) -> object:
        # Declared, not reached through __getattr__: the services find the row lock with
        # isinstance(store, RowLockingStore), which looks methods up on the class.
        return self.inner.locked(subject)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.mark.parametrize("backend", SQL)
def test_eight_writers_of_one_account_decide_in_its_lock_and_never_lose_a_race(
    backend: str, engine_for: EngineFor
) -> None:
    store = _CountingConflicts(SqlAccountStore(engine_for(backend), clock_source="process"))
    tokens = service_over(store)  # type: ignore[arg-type]
    subject = new_subject("hot")
    tokens.consume(Principal(subject), 1)  # the row exists: every writer below locks it
    store.commits = 0

    def debit_twenty(_: int) -> None:
        for _ in range(20):
            tokens.consume(Principal(subject), 1)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(debit_twenty, range(8)))

    assert store.conflicts == 0
    assert store.commits == 160
    account = store.inner.load(subject)
    assert account is not None
    assert account.token_used == 161


@pytest.mark.parametrize("backend", SQL[1:])
def test_a_locked_block_holds_the_accounts_row_until_it_ends(
    backend: str, engine_for: EngineFor
) -> None:
    engine = engine_for(backend)
    store = SqlAccountStore(engine, clock_source="process")
    subject = new_subject("locked")
    service_over(store).consume(Principal(subject), 1)
    other = make_engine(engine.url, pool_size=1, max_overflow=0)
    nowait = "SELECT version FROM tokenplans_accounts WHERE subject = :s FOR UPDATE NOWAIT"
    key = subject.encode() if backend == "mysql" else subject
    try:
        with store.locked(subject), other.connect() as conn, pytest.raises(OperationalError):
            conn.execute(text(nowait), {"s": key})
        with other.begin() as conn:
            # Free once the block has ended (opened and debited: version 2).
            assert conn.execute(text(nowait), {"s": key}).scalar_one() == 2
    finally:
        other.dispose()
