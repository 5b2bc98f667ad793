"""The in-memory store under real threads: no lost update, no overspend.

It is the model implementation every SQL store is compared against, so it must be
right under contention too, not just one call at a time.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest
from debit_threads import debit_from_threads

from tokenplans import PlanCatalog, Principal, TokenService, fold
from tokenplans.ports import Commit, WriteConflictError
from tokenplans.testing import InMemoryStore, SettableClock

ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))
THREADS = 8


class CountingStore(InMemoryStore):
    """Counts lost races, to show the test really raced."""

    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 0

    def commit(self, commit: Commit) -> None:
        try:
            super().commit(commit)
        except WriteConflictError:
            self.conflicts += 1
            raise


@pytest.fixture(autouse=True)
def switch_threads_often() -> Iterator[None]:
    """Make the interpreter switch threads every microsecond so reads and commits interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_eight_threads_debiting_one_account_never_lose_an_update_or_overspend() -> None:
    store = CountingStore()
    service = TokenService(store, PlanCatalog.default(), SettableClock(), max_attempts=10_000)
    service.grant(ADMIN, 9_000, subject="alice")  # quota 10,000
    debited = debit_from_threads(service, "alice", threads=THREADS, debits_per_thread=400)

    assert store.conflicts > 0
    account = store.load("alice")
    assert account is not None
    assert debited == account.token_used <= account.token_quota == 10_000
    assert fold(reversed(store.history("alice", limit=100_000))) == account


def test_concurrent_retries_of_one_idempotent_debit_debit_once() -> None:
    store = InMemoryStore()
    service = TokenService(store, PlanCatalog.default(), SettableClock(), max_attempts=10_000)
    start = threading.Barrier(THREADS)
    receipts = []

    def worker() -> None:
        start.wait()
        receipts.append(service.consume(Principal("alice"), 250, idempotency_key="job-7"))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(receipts) == THREADS
    assert sum(not receipt.replayed for receipt in receipts) == 1
    assert service.usage(Principal("alice")).token_used == 250
