"""A 3-node MariaDB Galera cluster beside a single MariaDB, measured in the same run.

Run ``python benchmarks/galera.py`` on a machine with Debian's ``mariadb-server``,
``galera-4`` and ``rsync`` (as root, or as a user that may run ``mariadbd``). It boots a
3-node cluster and one plain server with the same InnoDB settings, from the test
harness ``tests/galera/cluster.py``, all on this machine, and prints through
``TokenService``:

* the latency of one debit and of one usage read (median and 99th percentile, one
  client), and debits/s with one writer;
* debits/s with 8 writers on 8 accounts and with 8 writers on one account (on Galera,
  the writers spread over the three nodes), with commit attempts per committed debit;
* on Galera, the same latencies with ``wsrep_sync_wait`` off, set per session (what
  tokenplans does) and set before each read (``SET SESSION`` around the read);
* the ratios Galera / single.

All nodes share this machine's cores and disk, so the cluster gets no more hardware than
the single server: the figures show what replication costs, not what more machines buy.
Threads share one process, so Python's GIL caps every figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The cluster harness is the tests' own: one copy, used by both. (Imported as ``cluster``:
# this script's own name hides the tests' ``galera`` directory.)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "galera"))

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import harness
from cluster import missing_packages, running_cluster
from sqlalchemy import Connection, Engine, event
from storage import CountingStore, _cell, counting

from tokenplans import ADMIN_SCOPE, MAX_AMOUNT, PlanCatalog, Principal, TokenService
from tokenplans.testing import SettableClock
from tokenplans_adapters.sql import SqlAccountStore, make_engine, upgrade_schema

T = TypeVar("T")
WRITERS = 8
SAMPLES = 500
ADMIN = Principal("bench-admin", {ADMIN_SCOPE})
NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
CATALOG = PlanCatalog.default()


class PerReadSyncStore(SqlAccountStore):
    """The alternative to a per-session setting: causal reads switched on around each
    read only (two more statements per read)."""

    def _read(self, query: Callable[[Connection], T]) -> T:
        def synced(conn: Connection) -> T:
            conn.exec_driver_sql("SET SESSION wsrep_sync_wait = 1")
            try:
                return query(conn)
            finally:
                conn.exec_driver_sql("SET SESSION wsrep_sync_wait = 0")

        return super()._read(synced)


def _without_sync_wait(engine: Engine) -> Engine:
    """``engine`` with tokenplans' per-session ``wsrep_sync_wait=1`` undone on connect."""

    @event.listens_for(engine, "connect")
    def _off(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION wsrep_sync_wait = 0")

    return engine


def _service(store: SqlAccountStore | CountingStore) -> TokenService:
    return TokenService(store, CATALOG, SettableClock(NOW), max_attempts=10_000)  # type: ignore[arg-type]


def _funded(tokens: TokenService) -> Principal:
    subject = f"bench-galera-{uuid.uuid4()}"
    tokens.grant(ADMIN, subject, MAX_AMOUNT)
    return Principal(subject)


def latencies(setups: dict[str, list[SqlAccountStore]]) -> dict[str, dict[str, float]]:
    """Per setup: median and p99 (ms) of a debit and of a usage read by one client, the
    read on the node after the one that wrote, and debits/s. The setups take turns
    sample by sample, so that a busy machine slows them alike."""
    services = {name: [_service(store) for store in stores] for name, stores in setups.items()}
    principals = {name: _funded(nodes[0]) for name, nodes in services.items()}
    debit_ms: dict[str, list[float]] = {name: [] for name in setups}
    read_ms: dict[str, list[float]] = {name: [] for name in setups}
    for n in range(SAMPLES):
        for name, nodes in services.items():
            started = time.perf_counter()
            nodes[n % len(nodes)].consume(principals[name], 1)
            debit_ms[name].append((time.perf_counter() - started) * 1e3)
            started = time.perf_counter()
            nodes[(n + 1) % len(nodes)].usage(principals[name])
            read_ms[name].append((time.perf_counter() - started) * 1e3)
    return {
        name: {
            "debit p50 ms": statistics.median(debit_ms[name]),
            "debit p99 ms": statistics.quantiles(debit_ms[name], n=100)[98],
            "read p50 ms": statistics.median(read_ms[name]),
            "read p99 ms": statistics.quantiles(read_ms[name], n=100)[98],
            "1 writer/s": 1e3 / statistics.fmean(debit_ms[name]),
        }
        for name in setups
    }


def writers(stores: list[SqlAccountStore], seconds: float, *, shared: bool) -> tuple[float, float]:
    """(debits/s of WRITERS threads, writer i on ``stores[i % len]``; attempts per debit)."""
    counters = [counting(store) for store in stores]
    services = [_service(counter) for counter in counters]
    one = _funded(services[0])
    principals = [one if shared else _funded(services[0]) for _ in range(WRITERS)]
    for counter in counters:
        counter.attempts = counter.conflicts = 0

    def make_op(index: int) -> Callable[[], object]:
        tokens, principal = services[index % len(services)], principals[index]
        return lambda: tokens.consume(principal, 1)

    per_second = harness.rate(WRITERS, make_op, seconds=seconds, rounds=2)
    attempts = sum(c.attempts for c in counters)
    committed = attempts - sum(c.conflicts for c in counters)
    return per_second, attempts / max(1, committed)


def throughput(stores: list[SqlAccountStore], seconds: float) -> dict[str, float]:
    figures: dict[str, float] = {}
    figures["8 on 8 accts/s"], _ = writers(stores, seconds, shared=False)
    figures["8 on 1 acct/s"], figures["attempts/debit"] = writers(stores, seconds, shared=True)
    return figures


@contextmanager
def _engines(
    urls: list[str], adapt: Callable[[Engine], Engine] = lambda e: e
) -> Iterator[list[Engine]]:
    with ExitStack() as stack:
        engines = []
        for url in urls:
            engine = adapt(make_engine(url))
            stack.callback(engine.dispose)
            engines.append(engine)
        yield engines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per throughput round")
    args = parser.parse_args()
    reason = missing_packages()
    if reason:
        raise SystemExit(f"cannot boot a Galera cluster here: {reason}")
    with (
        running_cluster(1, galera=False) as single,
        running_cluster(3) as cluster,
        _engines(single.urls) as plain,
        _engines(cluster.urls) as nodes,
        _engines(cluster.urls, _without_sync_wait) as unsynced,
    ):
        print("booted a single MariaDB and a 3-node Galera cluster", flush=True)
        upgrade_schema(plain[0])
        upgrade_schema(nodes[0])
        single_stores = [SqlAccountStore(plain[0])]
        galera_stores = [SqlAccountStore(engine) for engine in nodes]
        timed = latencies(
            {
                "single MariaDB": single_stores,
                "Galera, 3 nodes": galera_stores,
                "Galera, sync per read": [PerReadSyncStore(engine) for engine in unsynced],
                "Galera, sync off": [SqlAccountStore(engine) for engine in unsynced],
            }
        )
        print("measured the latencies", flush=True)
        rows = [
            {"database": name, **timed[name], **throughput(stores, args.seconds)}
            for name, stores in (
                ("single MariaDB", single_stores),
                ("Galera, 3 nodes", galera_stores),
            )
        ]
    _print(rows)
    single_row, galera_row = rows
    print()
    print("Galera / single MariaDB:")
    for column in ("debit p50 ms", "read p50 ms", "1 writer/s", "8 on 8 accts/s", "8 on 1 acct/s"):
        print(f"  {column}: {galera_row[column] / single_row[column]:.2f}x")
    print()
    print("wsrep_sync_wait on Galera (one client, reading on the node after the writer's):")
    _print(
        [
            {"wsrep_sync_wait": label, **timed[name]}
            for label, name in (
                ("per session (what tokenplans sets)", "Galera, 3 nodes"),
                ("SET SESSION around each read", "Galera, sync per read"),
                ("off (reads may be stale)", "Galera, sync off"),
            )
        ]
    )


def _print(rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(_cell(row.get(column)) for column in columns) + " |")


if __name__ == "__main__":
    main()
