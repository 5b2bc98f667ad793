"""Concurrency on every SQL dialect: no lost update, no overspend, across threads and processes.

A naive read-then-write lost most of its debits on PostgreSQL and MariaDB at
their default isolation levels; these tests would catch that. Four processes of eight
threads each hammer one account; then sixteen threads upgrade one account a tier each.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime

import pytest
from sqlalchemy import Engine
from storage_support import (
    ADMIN,
    Debit,
    HoldOutcome,
    debit_until_refused,
    hold_until_refused,
    new_subject,
    service_over,
    whole_ledger,
)
from strategies import update_directly

from tokenplans import Account, EntryKind, PlanCatalog, Principal, fold
from tokenplans._rules.decisions import Decision
from tokenplans._rules.quota import change_plan
from tokenplans_adapters.sql import SqlAccountStore

PROCESSES = 4
THREADS = 8
QUOTA = 10_000
BACKENDS = [
    "sqlite",
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_four_processes_of_eight_threads_never_overspend_or_lose_a_debit(
    backend: str, engine_for: Callable[[str], Engine]
) -> None:
    engine = engine_for(backend)
    store = SqlAccountStore(engine, clock_source="process")
    tokens = service_over(store)
    subject = new_subject("hammered")
    tokens.grant(ADMIN, QUOTA - 1000, subject=subject)  # basic's 1,000 + 9,000 granted
    with ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(debit_until_refused, _url(engine), subject, worker, THREADS)
            for worker in range(PROCESSES)
        ]
        succeeded: list[Debit] = [d for f in futures for d in f.result()]

    after = store.load(subject)
    assert after is not None
    spent = sum(d.amount for d in succeeded)
    assert spent <= QUOTA
    assert (after.token_quota, after.token_used) == (QUOTA, spent)
    assert after.remaining < 50  # every thread ran until refused
    entries = whole_ledger(store, subject)
    assert fold(entries) == after
    debited = [e for e in entries if e.kind is EntryKind.DEBITED]
    assert sorted((getattr(e.facts, "idempotency_key", None), e.amount) for e in debited) == sorted(
        succeeded
    )

    # Replaying every request with its key returns its first receipt and changes nothing.
    for debit in succeeded:
        replay = tokens.consume(Principal(subject), debit.amount, idempotency_key=debit.key)
        assert replay.replayed
    assert store.load(subject) == after


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_four_processes_of_eight_threads_close_every_hold_once_and_never_overspend(
    backend: str, engine_for: Callable[[str], Engine]
) -> None:
    engine = engine_for(backend)
    store = SqlAccountStore(engine, clock_source="process")
    tokens = service_over(store)
    subject = new_subject("held")
    quota = 2_500
    tokens.grant(ADMIN, quota - 1000, subject=subject)
    with ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(hold_until_refused, _url(engine), subject, worker, THREADS)
            for worker in range(PROCESSES)
        ]
        outcomes: list[HoldOutcome] = [o for f in futures for o in f.result()]

    after = store.load(subject)
    assert after is not None
    entries = whole_ledger(store, subject)
    assert fold(entries) == after
    # Of each pair of identical settles racing, exactly one applied; the other replayed.
    assert all(o.applied == 1 for o in outcomes if o.settled is not None)
    by_hold: dict[str, list[EntryKind]] = {}
    for entry in entries:
        if getattr(entry.facts, "hold_id", None) is not None:
            by_hold.setdefault(getattr(entry.facts, "hold_id", None), []).append(entry.kind)
    assert by_hold == {
        o.hold_id: [
            EntryKind.HOLD_PLACED,
            EntryKind.HOLD_RELEASED if o.settled is None else EntryKind.HOLD_SETTLED,
        ]
        for o in outcomes
    }
    assert after.token_held == 0
    assert not store.outstanding(subject).holds
    assert after.token_used == sum(o.settled or 0 for o in outcomes)
    # used + held never above what was made available, except by the recorded overage.
    overage = 0
    for entry in entries:
        overage += getattr(entry.facts, "overage", None) or 0
        assert entry.after.token_used + entry.after.token_held <= quota + overage
    assert after.token_used <= quota + overage


def _ladder() -> PlanCatalog:
    """A free tier and sixteen paid tiers above it: tier i gives i x 1,000 tokens."""
    plans = {"tier-0": {"price": 0, "tokens": 100, "duration_days": None}}
    for tier in range(1, 17):
        plans[f"tier-{tier}"] = {"price": tier * 100, "tokens": tier * 1000, "duration_days": 30}
    return PlanCatalog.from_mapping(plans)


@pytest.mark.parametrize(
    ("backend", "isolation"),
    [
        ("sqlite", None),  # SQLite is serializable already: BEGIN IMMEDIATE
        pytest.param("mysql", None, marks=pytest.mark.mysql),
        pytest.param("mysql", "SERIALIZABLE", marks=pytest.mark.mysql),
        pytest.param("postgres", None, marks=pytest.mark.postgres),
        pytest.param("postgres", "SERIALIZABLE", marks=pytest.mark.postgres),
    ],
)
def test_sixteen_concurrent_upgrades_each_carry_over_exactly_once_in_a_serial_order(
    backend: str, isolation: str | None, engine_for: Callable[[str], Engine]
) -> None:
    """Also at SERIALIZABLE, where the databases abort lost races with serialization
    failures and deadlocks instead: the store turns those into write conflicts too."""
    engine = engine_for(backend)
    if isolation is not None:
        engine = engine.execution_options(isolation_level=isolation)
    catalog = _ladder()
    store = SqlAccountStore(engine, clock_source="process")
    tokens = service_over(store, catalog=catalog)
    subject = new_subject("climber")

    def one_tier_up(account: Account, now: datetime) -> Decision[str]:
        target = catalog.plans[catalog.get(account.plan_id).rank + 1]
        change = change_plan(account, target, catalog, now, actor="upgrader")
        return Decision(change, target.id)

    with ThreadPoolExecutor(16) as pool:
        reached = list(pool.map(lambda _: update_directly(tokens, subject, one_tier_up), range(16)))

    assert sorted(reached) == sorted(f"tier-{tier}" for tier in range(1, 17))
    after = store.load(subject)
    assert after is not None
    assert after.plan_id == "tier-16"
    assert (after.token_quota, after.token_used) == (100 + 1000 * sum(range(1, 17)), 0)
    entries = whole_ledger(store, subject)
    assert fold(entries) == after
    upgrades = entries[1:]
    assert [e.message for e in upgrades] == [
        f"upgraded to tier-{tier} with carry-over" for tier in range(1, 17)
    ]
    # Each carried over exactly the quota before it: nothing counted twice or lost.
    assert [e.quota_delta for e in upgrades] == [1000 * tier for tier in range(1, 17)]
