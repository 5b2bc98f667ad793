"""Three processes, each on a different Galera node, eight threads each, one account.

Every node accepts writes; two nodes committing to one account at once is settled by
certification, and the loser decides again. Nothing may be overspent or lost, every
node must hold the same ledger folding to the same snapshot, and replaying any debit
with its key, on any node, must apply it once.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
from sqlalchemy import Engine
from storage_support import (
    ADMIN,
    Debit,
    debit_until_refused,
    new_subject,
    service_over,
    whole_ledger,
)

from tokenplans import EntryKind, Principal, fold
from tokenplans_adapters.sql import SqlAccountStore

pytestmark = [pytest.mark.galera, pytest.mark.slow]

THREADS = 8
QUOTA = 6_000


def test_three_processes_on_three_nodes_never_overspend_and_every_node_agrees(
    node_engines: list[Engine],
) -> None:
    stores = [SqlAccountStore(engine, clock_source="process") for engine in node_engines]
    subject = new_subject("galera-hammered")
    service_over(stores[0]).grant(ADMIN, QUOTA - 1000, subject=subject)  # basic's 1,000 + the rest
    urls = [engine.url.render_as_string(hide_password=False) for engine in node_engines]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(urls), mp_context=spawn) as pool:
        futures = [
            pool.submit(debit_until_refused, url, subject, worker, THREADS)
            for worker, url in enumerate(urls)
        ]
        succeeded: list[Debit] = [d for f in futures for d in f.result()]

    spent = sum(d.amount for d in succeeded)
    assert spent <= QUOTA
    snapshots = [store.load(subject) for store in stores]
    assert snapshots[0] is not None
    assert (snapshots[0].token_quota, snapshots[0].token_used) == (QUOTA, spent)
    assert snapshots[0].remaining < 50  # every thread ran until refused
    assert snapshots == [snapshots[0]] * len(stores)
    for store in stores:
        entries = whole_ledger(store, subject)
        assert fold(entries) == snapshots[0]
        debited = [e for e in entries if e.kind is EntryKind.DEBITED]
        assert sorted(
            (getattr(e.facts, "idempotency_key", None), e.amount) for e in debited
        ) == sorted(succeeded)

    # Each debit replayed with its key, on a node other than the one that made it.
    services = [service_over(store) for store in stores]
    for debit in succeeded:
        worker = int(debit.key.split("-")[0].removeprefix("w"))  # keys are w<worker>-t<thread>-<n>
        replay = services[(worker + 1) % len(services)].consume(
            Principal(subject), debit.amount, idempotency_key=debit.key
        )
        assert replay.replayed
    assert [store.load(subject) for store in stores] == snapshots
