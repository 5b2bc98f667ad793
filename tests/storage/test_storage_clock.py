"""One clock for every app server sharing a database (SQLite, MariaDB, PostgreSQL).

Each "server" here is a ``TokenService`` over its own ``SqlAccountStore`` of one shared
database, with its own process clock (a ``SettableClock``) set apart from the other's.
With ``clock_source="database"`` (the default) the database's time decides: a hold open
by it is open for both, a period ends once; with either source an account's entries
never go back in time. SQLite's "database time" is the process's real clock (one host),
so there both servers read the same real time, whatever their settable clocks say.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from storage_support import new_subject, service_over, whole_ledger

from tokenplans import (
    EntryKind,
    InsufficientTokensError,
    LedgerEntry,
    Principal,
    TokenService,
    fold,
)
from tokenplans.testing import SettableClock
from tokenplans_adapters.sql import SqlAccountStore
from tokenplans_adapters.sql.store import ClockSource

SQL = [
    "sqlite",
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
EngineFor = Callable[[str], Engine]
#: The hold outlives any test run; the servers' clocks are further apart than it lives.
HOLD_TTL = timedelta(hours=1)
SKEW = timedelta(hours=2)


def _servers(
    engine: Engine, clock_source: ClockSource, *, first: datetime, second: datetime
) -> tuple[TokenService, TokenService]:
    """Two app servers sharing ``engine``'s database, their process clocks at ``first``
    and ``second``."""
    return (
        service_over(SqlAccountStore(engine, clock_source=clock_source), SettableClock(first)),
        service_over(SqlAccountStore(engine, clock_source=clock_source), SettableClock(second)),
    )


def _spend_a_hold_across_skewed_servers(engine: Engine, clock_source: ClockSource) -> int:
    """Server A reserves everything for an hour; server B, its clock two hours ahead,
    debits everything; A settles its hold in full. Returns what the account used."""
    now = datetime.now(UTC)
    a, b = _servers(engine, clock_source, first=now, second=now + SKEW)
    user = Principal(new_subject("skew"))
    quota = a.usage(user).remaining
    hold = a.reserve(user, quota, ttl_seconds=int(HOLD_TTL.total_seconds()))
    with contextlib.suppress(InsufficientTokensError):
        b.consume(user, quota)
    a.settle(user, hold.hold_id, quota)
    used = a.usage(user).token_used
    assert b.usage(user).token_used == used
    return used


@pytest.mark.parametrize("backend", SQL)
def test_a_hold_open_by_the_database_clock_is_open_on_every_server(
    backend: str, engine_for: EngineFor
) -> None:
    engine = engine_for(backend)
    quota = service_over(SqlAccountStore(engine)).usage(Principal(new_subject())).remaining
    assert _spend_a_hold_across_skewed_servers(engine, "database") == quota


@pytest.mark.parametrize("backend", SQL)
def test_with_process_clocks_the_same_skew_spends_a_hold_twice(
    backend: str, engine_for: EngineFor
) -> None:
    # What the database clock prevents, shown to happen without it: server B, two hours
    # ahead, finds A's hold expired and debits its tokens, and A's settle charges them
    # again (the scenario above can fail).
    engine = engine_for(backend)
    quota = service_over(SqlAccountStore(engine)).usage(Principal(new_subject())).remaining
    assert _spend_a_hold_across_skewed_servers(engine, "process") == 2 * quota


def _in_order(entries: list[LedgerEntry]) -> bool:
    return all(earlier.at <= later.at for earlier, later in itertools.pairwise(entries))


@pytest.mark.parametrize("clock_source", ["database", "process"])
@pytest.mark.parametrize("backend", SQL)
def test_entries_of_servers_ten_seconds_apart_stay_in_order_of_time(
    backend: str, clock_source: ClockSource, engine_for: EngineFor
) -> None:
    engine = engine_for(backend)
    now = datetime.now(UTC)
    behind, ahead = _servers(engine, clock_source, first=now, second=now + timedelta(seconds=10))
    user = Principal(new_subject("order"))
    for _ in range(3):
        ahead.consume(user, 1)
        behind.consume(user, 1)
    store = SqlAccountStore(engine)
    entries = whole_ledger(store, user.subject)
    assert [e.kind for e in entries].count(EntryKind.DEBITED) == 6
    assert _in_order(entries)
    assert fold(entries) == store.load(user.subject)
    if clock_source == "process":
        # The server behind was moved forward to the entry before its own, never before.
        debits = [e for e in entries if e.kind is EntryKind.DEBITED]
        assert all(e.at == now + timedelta(seconds=10) for e in debits)


@pytest.mark.parametrize("backend", SQL)
def test_a_database_clock_behind_the_last_entry_is_moved_forward_to_it(
    backend: str, engine_for: EngineFor
) -> None:
    # An entry dated an hour ahead of the database (a server trusting its own clock, or
    # the database's clock stepped back): the next decision is dated at that entry.
    engine = engine_for(backend)
    user = Principal(new_subject("clamp"))
    future = datetime.now(UTC) + timedelta(hours=1)
    service_over(SqlAccountStore(engine, clock_source="process"), SettableClock(future)).consume(
        user, 1
    )
    service_over(SqlAccountStore(engine), SettableClock(future - SKEW)).consume(user, 2)
    entries = whole_ledger(SqlAccountStore(engine), user.subject)
    assert [(e.kind, e.amount) for e in entries[-2:]] == [
        (EntryKind.DEBITED, 1),
        (EntryKind.DEBITED, 2),
    ]
    assert entries[-1].at == entries[-2].at == future
    # A reservation is dated there too, so its expiry counts from the last entry.
    hold = service_over(SqlAccountStore(engine)).reserve(user, 1, ttl_seconds=60)
    assert hold.created_at == future
    assert hold.expires_at == future + timedelta(seconds=60)


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@pytest.mark.parametrize("backend", SQL)
def test_a_period_resets_at_the_database_instant_whatever_the_servers_clocks_say(
    backend: str, engine_for: EngineFor
) -> None:
    engine = engine_for(backend)
    store = SqlAccountStore(engine)
    user = Principal(new_subject("reset"))
    # The account was opened and used last month (by a server on last month's time).
    last_month = _month_start(datetime.now(UTC)) - timedelta(days=3)
    service_over(
        SqlAccountStore(engine, clock_source="process"), SettableClock(last_month)
    ).consume(user, 5)
    # Two servers, one still in last month by its clock, one a month ahead: both see the
    # database's month, and only the first change writes its reset.
    behind, ahead = _servers(engine, "database", first=last_month, second=last_month + SKEW * 400)
    before = store.current_time()
    behind.consume(user, 1)
    ahead.consume(user, 2)
    after = store.current_time()
    assert before is not None
    assert after is not None
    usage = behind.usage(user)
    assert usage.token_used == 3
    assert usage.period_start <= before
    assert after < usage.period_end
    entries = whole_ledger(store, user.subject)
    resets = [e for e in entries if e.kind is EntryKind.PERIOD_RESET]
    assert [e.at for e in resets] == [_month_start(before)]
    assert _in_order(entries)


@pytest.mark.parametrize("backend", SQL)
def test_skewed_servers_in_threads_keep_an_exact_ordered_ledger(
    backend: str, engine_for: EngineFor
) -> None:
    engine = engine_for(backend)
    now = datetime.now(UTC)
    servers = _servers(engine, "database", first=now, second=now + SKEW)
    user = Principal(new_subject("threads"))
    rounds = 8

    def work(server: TokenService) -> None:
        for _ in range(rounds):
            hold = server.reserve(user, 7, ttl_seconds=int(HOLD_TTL.total_seconds()))
            server.consume(user, 3)
            server.settle(user, hold.hold_id, 5)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(work, server) for server in servers]:
            done.result()
    store = SqlAccountStore(engine)
    usage = servers[0].usage(user)
    assert (usage.token_used, usage.token_held) == (2 * rounds * (3 + 5), 0)
    entries = whole_ledger(store, user.subject)
    assert _in_order(entries)
    assert fold(entries) == store.load(user.subject)
    # No hold lapsed: every one was settled, none expired by the other server's clock.
    assert EntryKind.HOLD_EXPIRED not in {e.kind for e in entries}


def test_the_clock_source_is_checked() -> None:
    with pytest.raises(ValueError, match="clock_source"):
        SqlAccountStore(None, clock_source="wall")  # type: ignore[arg-type]
