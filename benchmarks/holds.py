"""Reserve+settle pairs per second beside plain debits, in the same run, per store.

Run ``python benchmarks/holds.py`` (SQLite in a temporary file always; PostgreSQL and
MySQL/MariaDB too when ``TOKENPLANS_TEST_POSTGRES_URL`` / ``TOKENPLANS_TEST_MYSQL_URL``
are set; ``--seconds`` per measurement). For each store, through ``TokenService``, with
one writer and with 8 writers on 8 accounts:

* consumes/s (no idempotency key) and keyed consumes/s (a receipt per debit, the nearer
  analogue: a hold has an identity too);
* reserve+settle pairs/s (a generated hold id, settled with a different amount than
  held, so the settle really recomputes);
* the cost of a pair in consumes: consumes/s divided by pairs/s (the goal is at most 2:
  a pair is two commits, each about one debit's work).

Each figure is the best of a few rounds, the measurements interleaved so machine noise
hits both sides alike.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import harness

from tokenplans import ADMIN_SCOPE, MAX_AMOUNT, AccountStore, PlanCatalog, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.sql import SqlAccountStore, make_engine, upgrade_schema

ADMIN = Principal("bench-admin", {ADMIN_SCOPE})
NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
CATALOG = PlanCatalog.default()
ROUNDS = 3


def _accounts(tokens: TokenService, writers: int) -> list[Principal]:
    principals = [Principal(f"bench-holds-{uuid.uuid4()}") for _ in range(writers)]
    for principal in principals:
        tokens.grant(ADMIN, MAX_AMOUNT, subject=principal.subject)
    return principals


def measure(store: AccountStore, seconds: float, writers: int) -> dict[str, float]:
    tokens = TokenService(store, CATALOG, SettableClock(NOW), max_attempts=10_000)
    principals = _accounts(tokens, writers)
    counter = itertools.count()

    def consume(index: int) -> Callable[[], object]:
        return lambda: tokens.consume(principals[index], 7)

    def keyed_consume(index: int) -> Callable[[], object]:
        return lambda: tokens.consume(principals[index], 7, idempotency_key=f"k{next(counter)}")

    def pair(index: int) -> Callable[[], object]:
        principal = principals[index]

        def reserve_then_settle() -> object:
            hold = tokens.reserve(principal, 10)
            return tokens.settle(principal, hold.hold_id, 7)

        return reserve_then_settle

    best: dict[str, float] = {}
    for _ in range(ROUNDS):  # interleaved: each round measures all three
        for name, op in (("consume", consume), ("keyed", keyed_consume), ("pair", pair)):
            per_second = harness.rate(writers, op, seconds=seconds, rounds=1)
            best[name] = max(best.get(name, 0.0), per_second)
    return best


def _stores(tmp: str) -> list[tuple[str, AccountStore, Callable[[], None]]]:
    stores: list[tuple[str, AccountStore, Callable[[], None]]] = [
        ("memory", InMemoryStore(), lambda: None)
    ]
    urls = [("sqlite", f"sqlite:///{tmp}/bench-holds.db")]
    for name, variable in (
        ("postgres", "TOKENPLANS_TEST_POSTGRES_URL"),
        ("mysql", "TOKENPLANS_TEST_MYSQL_URL"),
    ):
        if os.environ.get(variable):
            urls.append((name, os.environ[variable]))
    for name, url in urls:
        engine = make_engine(url)
        upgrade_schema(engine)
        stores.append((name, SqlAccountStore(engine), engine.dispose))
    return stores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    args = parser.parse_args()
    print(
        f"{'store':<9} {'writers':>7} {'consume/s':>10} {'keyed/s':>9} {'pairs/s':>9}"
        f" {'pair/consume':>13} {'pair/keyed':>11}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, store, close in _stores(tmp):
            try:
                for writers in (1, 8):
                    got = measure(store, args.seconds, writers)
                    print(
                        f"{name:<9} {writers:>7} {got['consume']:>10.0f} {got['keyed']:>9.0f}"
                        f" {got['pair']:>9.0f} {got['consume'] / got['pair']:>12.2f}x"
                        f" {got['keyed'] / got['pair']:>10.2f}x"
                    )
            finally:
                close()


if __name__ == "__main__":
    main()
