"""Storage throughput per dialect, against the in-memory store measured in the same run.

Run ``python benchmarks/storage.py`` (SQLite in a temporary file always; PostgreSQL and
MySQL/MariaDB too when ``TOKENPLANS_TEST_POSTGRES_URL`` / ``TOKENPLANS_TEST_MYSQL_URL``
are set; ``--seconds`` per measurement). For each store it prints, through
``TokenService``:

* debits/s with 1 writer, with 8 concurrent writers on one account, and with 8 writers
  on 8 different accounts, plus attempts per committed debit (the optimistic
  compare-and-write's retries under contention);
* usage reads/s (one thread);
* the read time of usage for an account with 1,000,000 ledger entries over one with 10
  (bulk-loaded with one ``INSERT ... SELECT``);
* for comparison with our optimistic locking, 8 writers on one account doing the
  pessimistic alternative in raw SQL: ``SELECT ... FOR UPDATE``, check, ``UPDATE``,
  ledger ``INSERT`` in one transaction (PostgreSQL and MySQL; SQLite's
  ``BEGIN IMMEDIATE`` already serialises writers).

Threads share one process, so Python's GIL caps every figure; the databases run on the
same machine. Each figure is the best of a few rounds.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The million-entry bulk loader is the storage tests' own: one copy, used by both.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "storage"))

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import harness
from harness import OpFactory
from sqlalchemy import Engine, delete, select, update
from storage_support import bulk_load_account

from tokenplans import ADMIN_SCOPE, MAX_AMOUNT, AccountStore, PlanCatalog, Principal, TokenService
from tokenplans._rules.quota import open_account
from tokenplans.ports import Commit, RowLockingStore, WriteConflictError
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.sql import SqlAccountStore, make_engine, upgrade_schema
from tokenplans_adapters.sql.schema import accounts, ledger_entries

WRITERS = 8
ROUNDS = 2
ADMIN = Principal("bench-admin", {ADMIN_SCOPE})
NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
CATALOG = PlanCatalog.default()


class CountingStore:
    """Delegates to a store and counts commit attempts, to show the retries."""

    def __init__(self, inner: AccountStore) -> None:
        self.inner = inner
        self.attempts = 0
        self.conflicts = 0

    def commit(self, commit: Commit) -> None:
        self.attempts += 1
        try:
            self.inner.commit(commit)
        except WriteConflictError:
            self.conflicts += 1
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class LockingCountingStore(CountingStore):
    """A :class:`CountingStore` over a store that can lock a row, declaring it: the
    services find the capability by ``isinstance``, which ``__getattr__`` does not
    satisfy (from Python 3.12 on)."""

    def locked(self, subject: str) -> Any:
        return self.inner.locked(subject)


def counting(store: AccountStore) -> CountingStore:
    """``store`` with its commit attempts counted, its row lock (if any) kept."""
    if isinstance(store, RowLockingStore):
        return LockingCountingStore(store)
    return CountingStore(store)


def rate(threads: int, seconds: float, make_op: OpFactory) -> float:
    """Operations per second over all threads: the best of ROUNDS rounds."""
    return harness.rate(threads, make_op, seconds=seconds, rounds=ROUNDS)


def _subject(label: str) -> str:
    return f"bench-{label}-{uuid.uuid4()}"


def debits(
    store: AccountStore, seconds: float, writers: int, *, shared: bool
) -> tuple[float, float]:
    """(debits/s, commit attempts per committed debit)."""
    counter = counting(store)
    tokens = TokenService(counter, CATALOG, SettableClock(NOW), max_attempts=10_000)  # type: ignore[arg-type]
    one = _subject("shared")
    subjects = [one if shared else _subject(f"w{i}") for i in range(writers)]
    for subject in set(subjects):
        tokens.grant(ADMIN, MAX_AMOUNT, subject=subject)
    counter.attempts = counter.conflicts = 0

    def make_op(index: int) -> Callable[[], object]:
        principal = Principal(subjects[index])
        return lambda: tokens.consume(principal, 1)

    per_second = rate(writers, seconds, make_op)
    committed = counter.attempts - counter.conflicts
    return per_second, counter.attempts / max(1, committed)


def usage_reads(store: AccountStore, seconds: float) -> float:
    tokens = TokenService(store, CATALOG, SettableClock(NOW))
    subject = _subject("reader")
    tokens.consume(Principal(subject), 1)
    principal = Principal(subject)
    return rate(1, seconds, lambda _: lambda: tokens.usage(principal))


# -- the 1,000,000-entry account ---------------------------------------------------------


def read_time_ratio(engine: Engine, reads: int = 2000) -> tuple[float, float, float]:
    """(seconds to bulk-load 1,000,000 entries, median usage read at 1M / at 10, ratio)."""
    store = SqlAccountStore(engine)
    tokens = TokenService(store, CATALOG, SettableClock(NOW))
    big, small = _subject("million"), _subject("ten")
    started = time.perf_counter()
    bulk_load_account(engine, big, 1_000_000)
    load_seconds = time.perf_counter() - started
    bulk_load_account(engine, small, 10)
    try:
        medians = []
        for subject in (big, small):
            principal = Principal(subject)
            samples = []
            for _ in range(reads):
                t0 = time.perf_counter()
                tokens.usage(principal)
                samples.append(time.perf_counter() - t0)
            medians.append(statistics.median(samples))
        return load_seconds, medians[0] * 1e6, medians[0] / medians[1]
    finally:
        with engine.begin() as conn:
            for table in (ledger_entries, accounts):
                conn.execute(delete(table).where(table.c.subject.in_([big, small])))


# -- the pessimistic alternative, for comparison ----------------------------------------


def locked_debits(engine: Engine, seconds: float, writers: int) -> float:
    """8 writers on one account, each debit: SELECT ... FOR UPDATE, check, UPDATE, ledger
    INSERT, COMMIT. What a lock-based store would do (the port is shaped for CAS)."""
    subject = _subject("locked")
    opened = open_account(subject, CATALOG, NOW)
    SqlAccountStore(engine).commit(Commit(opened.account, 0, opened.entries))
    with engine.begin() as conn:
        conn.execute(
            update(accounts).where(accounts.c.subject == subject).values(token_quota=MAX_AMOUNT)
        )
    template = {
        "kind": "debited",
        "at": NOW,
        "quota_delta": 0,
        "used_delta": 1,
        "amount": 1,
        "message": "debited 1",
        "plan_id": "basic",
        "token_quota": MAX_AMOUNT,
        "period_start": opened.account.period_start,
        "period_end": opened.account.period_end,
    }
    locked = select(accounts).where(accounts.c.subject == subject).with_for_update()

    def make_op(_index: int) -> Callable[[], object]:
        def op() -> None:
            with engine.begin() as conn:
                row = conn.execute(locked).one()
                if row.token_used + 1 > row.token_quota:
                    raise AssertionError("quota exhausted")
                version = row.version + 1
                conn.execute(
                    update(accounts)
                    .where(accounts.c.subject == subject)
                    .values(token_used=row.token_used + 1, version=version)
                )
                conn.execute(
                    ledger_entries.insert().values(
                        subject=subject, version=version, token_used=row.token_used + 1, **template
                    )
                )

        return op

    return rate(writers, seconds, make_op)


# -- report -------------------------------------------------------------------------------


def measure(
    name: str, store: AccountStore, engine: Engine | None, seconds: float
) -> dict[str, Any]:
    figures: dict[str, Any] = {"store": name}
    figures["1 writer"], _ = debits(store, seconds, 1, shared=True)
    figures["8 on 1 acct"], figures["attempts/debit"] = debits(store, seconds, WRITERS, shared=True)
    figures["8 on 8 accts"], _ = debits(store, seconds, WRITERS, shared=False)
    figures["usage reads"] = usage_reads(store, seconds)
    if engine is not None:
        load, read_us, ratio = read_time_ratio(engine)
        figures["read @1M (us)"] = read_us
        figures["1M/10 ratio"] = ratio
        figures["1M load (s)"] = load
        if engine.dialect.name != "sqlite":
            figures["FOR UPDATE 8 on 1"] = locked_debits(engine, seconds, WRITERS)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement round")
    args = parser.parse_args()
    stores: list[tuple[str, str | None]] = [("memory", None)]
    with tempfile.TemporaryDirectory() as tmp:
        # SQLite at both durabilities, same run: FULL (the default, survives power loss)
        # and NORMAL (syncs at checkpoints only).
        stores.append(("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}"))
        stores.append(("sqlite-normal", f"sqlite:///{Path(tmp) / 'bench-normal.db'}"))
        for name, variable in (
            ("postgres", "TOKENPLANS_TEST_POSTGRES_URL"),
            ("mysql", "TOKENPLANS_TEST_MYSQL_URL"),
        ):
            if os.environ.get(variable):
                stores.append((name, os.environ[variable]))
        rows = []
        for name, url in stores:
            if url is None:
                rows.append(measure(name, InMemoryStore(), None, args.seconds))
                continue
            synchronous = "NORMAL" if name == "sqlite-normal" else "FULL"
            engine = make_engine(url, sqlite_synchronous=synchronous)
            try:
                upgrade_schema(engine)
                rows.append(measure(name, SqlAccountStore(engine), engine, args.seconds))
            finally:
                engine.dispose()
            print(f"measured {name}", flush=True)
    _print(rows)


def _print(rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = [_cell(row.get(column)) for column in columns]
        print("| " + " | ".join(cells) + " |")
    baseline = rows[0]
    print()
    print("ratios to the in-memory baseline (debits/s and reads/s):")
    for row in rows[1:]:
        parts = [
            f"{column} {row[column] / baseline[column]:.3f}x"
            for column in ("1 writer", "8 on 1 acct", "8 on 8 accts", "usage reads")
        ]
        print(f"  {row['store']}: " + ", ".join(parts))


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)


if __name__ == "__main__":
    main()
