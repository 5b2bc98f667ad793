"""Helpers shared by the storage tests (a plain module, so spawned worker processes can
import it): fresh subjects, services over a store, whole-ledger reads."""

from __future__ import annotations

import itertools
import os
import random
import signal
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple

import attrs
from sqlalchemy import Engine, bindparam, delete, event, text, update

from tokenplans import (
    Account,
    AccountBusyError,
    AccountStore,
    InsufficientTokensError,
    LedgerEntry,
    PlanCatalog,
    Pricer,
    Principal,
    TokenService,
)
from tokenplans._rules.quota import open_account
from tokenplans.ports import Commit
from tokenplans.testing import SettableClock
from tokenplans_adapters.sql import SqlAccountStore, make_engine
from tokenplans_adapters.sql.schema import ExactText, UtcDateTime, accounts, ledger_entries

#: Microseconds on purpose: every store must give them back exactly.
MID_JANUARY = datetime(2026, 1, 15, 12, 0, 0, 123_456, tzinfo=UTC)
ADMIN = Principal("admin-ops", frozenset({"tokenplans:admin"}))


class Debit(NamedTuple):
    key: str
    amount: int


def new_subject(label: str = "user") -> str:
    """A subject no other test (or concurrent test run on a shared database) uses."""
    return f"{label}-{uuid.uuid4()}"


def service_over(
    store: AccountStore,
    clock: SettableClock | None = None,
    catalog: PlanCatalog | None = None,
    pricer: Pricer | None = None,
) -> TokenService:
    return TokenService(
        store,
        PlanCatalog.default() if catalog is None else catalog,
        SettableClock(MID_JANUARY) if clock is None else clock,
        pricer=pricer,
    )


def whole_ledger(store: AccountStore, subject: str, page: int = 200) -> list[LedgerEntry]:
    """Every entry of ``subject``, oldest first, read page by page through the cursor."""
    entries: list[LedgerEntry] = []
    before: int | None = None
    while True:
        chunk: Sequence[LedgerEntry] = store.history(subject, before_version=before, limit=page)
        entries.extend(chunk)
        if len(chunk) < page:
            return entries[::-1]
        before = chunk[-1].version


def debit_until_refused(url: str, subject: str, worker: int, threads: int) -> list[Debit]:
    """One worker process of the concurrency test: ``threads`` threads each debit random
    amounts (1-50) with distinct idempotency keys until the account refuses one. Returns
    the (key, amount) of every debit that succeeded."""
    engine = make_engine(url)
    tokens = service_over(SqlAccountStore(engine, clock_source="process"))

    def run(thread: int) -> list[Debit]:
        rng = random.Random(f"{worker}-{thread}")  # noqa: S311 - a workload, not a secret
        done: list[Debit] = []
        for n in itertools.count():
            debit = Debit(f"w{worker}-t{thread}-{n}", rng.randint(1, 50))
            while True:
                try:
                    tokens.consume(Principal(subject), debit.amount, idempotency_key=debit.key)
                except InsufficientTokensError:
                    return done
                except AccountBusyError:
                    continue  # the same key again: safe, it cannot debit twice
                break
            done.append(debit)
        raise AssertionError("unreachable")

    try:
        with ThreadPoolExecutor(threads) as pool:
            return [d for done in pool.map(run, range(threads)) for d in done]
    finally:
        engine.dispose()


@contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement ``engine`` sends inside the block, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


_DIGITS = " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10))


def bulk_load_account(engine: Engine, subject: str, entries: int) -> Account:
    """Store an account whose ledger holds ``entries`` entries - opened, then grants of 1 -
    in one ``INSERT ... SELECT`` over a generated series (portable: a cross join of
    digit tables, so it takes seconds even for a million rows)."""
    store = SqlAccountStore(engine, clock_source="process")
    opened = open_account(subject, PlanCatalog.default(), MID_JANUARY)
    store.commit(Commit(opened.account, 0, opened.entries))
    width = len(str(max(1, entries - 1)))  # v runs over 2 .. 10**width + 1
    tables = ", ".join(f"({_DIGITS}) d{i}" for i in range(width))
    # Fill the primary key in order: the planners nest the digit tables differently.
    weights = [10**i for i in range(width)]
    if engine.dialect.name not in ("mysql", "mariadb"):
        weights.reverse()
    number = " + ".join(f"{weight} * d{i}.d" for i, weight in enumerate(weights))
    snapshot = opened.account
    series = text(
        "INSERT INTO tokenplans_ledger_entries (subject, version, kind, at, quota_delta,"  # noqa: S608 - only our integers are formatted in
        " used_delta, amount, message, plan_id, token_quota, token_used, period_start,"
        " period_end) SELECT :subject, v, 'granted', :at, 1, 0, 1, 'granted 1', :plan,"
        f" :quota + v - 1, 0, :start, :end FROM (SELECT {number} + 2 AS v FROM {tables})"
        " series WHERE v <= :entries"
    ).bindparams(
        bindparam("subject", type_=ExactText()),
        bindparam("at", type_=UtcDateTime()),
        bindparam("start", type_=UtcDateTime()),
        bindparam("end", type_=UtcDateTime()),
    )
    # A bulk load is maintenance, not a request: no deadline per database call.
    loader = make_engine(engine.url, call_timeout=None) if engine.url.host else engine
    with loader.begin() as conn:
        conn.execute(
            series,
            {
                "subject": subject,
                "at": MID_JANUARY,
                "plan": snapshot.plan_id,
                "quota": snapshot.token_quota,
                "start": snapshot.period_start,
                "end": snapshot.period_end,
                "entries": entries,
            },
        )
        final = attrs.evolve(
            snapshot, token_quota=snapshot.token_quota + entries - 1, version=entries
        )
        conn.execute(
            update(accounts)
            .where(accounts.c.subject == subject)
            .values(token_quota=final.token_quota, version=final.version)
        )
    if loader is not engine:
        loader.dispose()
    return final


def delete_account(engine: Engine, subject: str) -> None:
    """Remove one test account's rows (never the tables: the database is shared)."""
    with engine.begin() as conn:
        for table in (ledger_entries, accounts):
            conn.execute(delete(table).where(table.c.subject == subject))


class HoldOutcome(NamedTuple):
    """What one thread did with one hold: ``settled`` is the amount, ``None`` if released;
    ``applied`` counts the settle calls that were not replays (two raced for each)."""

    hold_id: str
    amount: int
    settled: int | None
    applied: int


def _retrying(call: Any) -> Any:
    """``call()`` again while the account is too contended: every call here carries its
    hold id, so a repeat can never hold or charge twice."""
    while True:
        try:
            return call()
        except AccountBusyError:
            continue


def hold_until_refused(
    url: str, subject: str, worker: int, threads: int, *, others: Sequence[str] = ()
) -> list[HoldOutcome]:
    """One worker process of the holds concurrency test: ``threads`` threads each reserve
    1-50 tokens under their own hold id, then settle it (0 to twice the hold, from two
    threads at once with the same amount) or release it, until a reserve is refused.

    ``others`` are more URLs of the same database (the other nodes of a Galera cluster):
    reserves still go through ``url``, but each release goes through a node picked at
    random, and the two racing settles through two different ones."""
    engines = [make_engine(u) for u in (url, *others)]
    nodes = [service_over(SqlAccountStore(engine, clock_source="process")) for engine in engines]
    tokens = nodes[0]
    user = Principal(subject)

    def settle_twice_at_once(pair: Sequence[TokenService], hold_id: str, amount: int) -> int:
        barrier = threading.Barrier(2)

        def settle(service: TokenService) -> bool:
            barrier.wait()
            return not _retrying(lambda: service.settle(user, hold_id, amount)).replayed

        with ThreadPoolExecutor(2) as racers:
            return sum(racers.map(settle, pair))

    def run(thread: int) -> list[HoldOutcome]:
        rng = random.Random(f"hold-{worker}-{thread}")  # noqa: S311 - a workload
        done: list[HoldOutcome] = []
        for n in itertools.count():
            hold_id, amount = f"w{worker}-t{thread}-{n}", rng.randint(1, 50)
            try:
                _retrying(lambda: tokens.reserve(user, amount, hold_id=hold_id))  # noqa: B023
            except InsufficientTokensError:
                return done
            if rng.random() < 0.25:
                releaser = rng.choice(nodes) if len(nodes) > 1 else tokens
                _retrying(lambda: releaser.release(user, hold_id))  # noqa: B023
                done.append(HoldOutcome(hold_id, amount, None, 0))
            else:
                used = rng.randint(0, 2 * amount)
                pair = rng.sample(nodes, 2) if len(nodes) > 1 else [tokens, tokens]
                applied = settle_twice_at_once(pair, hold_id, used)
                done.append(HoldOutcome(hold_id, amount, used, applied))
        raise AssertionError("unreachable")

    try:
        with ThreadPoolExecutor(threads) as pool:
            return [o for done in pool.map(run, range(threads)) for o in done]
    finally:
        for engine in engines:
            engine.dispose()


def reserve_then_die(url: str, subject: str, hold_id: str, amount: int, ttl: int) -> None:
    """A process that reserves and is killed (SIGKILL) before it can settle or release."""
    engine = make_engine(url)
    service_over(SqlAccountStore(engine, clock_source="process")).reserve(
        Principal(subject), amount, hold_id=hold_id, ttl_seconds=ttl
    )
    os.kill(os.getpid(), signal.SIGKILL)
