"""A store that can lock the account row: every attempt of a change is made inside its
``locked`` block, writers of one account queue instead of racing, and a block left by an
exception (a lost race, a refusal) is one the store rolls back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from debit_threads import debit_from_threads

from tokenplans import InsufficientTokensError, PlanCatalog, Principal, TokenService, fold
from tokenplans.ports import Commit, WriteConflictError
from tokenplans.testing import InMemoryStore, SettableClock

ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))
THREADS = 8


class LockingStore(InMemoryStore):
    """An in-memory store with a ``locked`` block: one lock for every account (enough to
    serialise the writers of one), recording how each block ended."""

    def __init__(self, *, conflicts_to_inject: int = 0) -> None:
        super().__init__()
        self._row = threading.Lock()
        self._inside = threading.local()
        self.blocks: list[str] = []  # "commit" or the exception's name, per block
        self.commits_outside = 0
        self.conflicts = 0
        self._inject = conflicts_to_inject

    @contextmanager
    def locked(self, subject: str) -> Iterator[None]:
        assert subject
        with self._row:
            self._inside.yes = True
            try:
                yield
            except BaseException as error:
                self.blocks.append(type(error).__name__)
                raise
            else:
                self.blocks.append("commit")
            finally:
                self._inside.yes = False

    def commit(self, commit: Commit) -> None:
        if not getattr(self._inside, "yes", False):
            self.commits_outside += 1
        if self._inject:
            self._inject -= 1
            raise WriteConflictError("injected")
        try:
            super().commit(commit)
        except WriteConflictError:
            self.conflicts += 1
            raise


def test_eight_threads_debiting_one_locked_account_never_conflict_or_overspend() -> None:
    store = LockingStore()
    service = TokenService(store, PlanCatalog.default(), SettableClock())
    service.grant(ADMIN, 9_000, subject="alice")  # quota 10,000
    debited = debit_from_threads(service, "alice", threads=THREADS, debits_per_thread=300)

    assert store.conflicts == 0
    assert store.commits_outside == 0
    account = store.load("alice")
    assert account is not None
    assert debited == account.token_used <= account.token_quota == 10_000
    assert fold(reversed(store.history("alice", limit=100_000))) == account


def test_a_conflict_inside_the_lock_leaves_the_block_and_is_decided_again() -> None:
    store = LockingStore(conflicts_to_inject=2)
    service = TokenService(store, PlanCatalog.default(), SettableClock())

    receipt = service.consume(Principal("alice"), 10)

    assert store.blocks == ["WriteConflictError", "WriteConflictError", "commit"]
    assert receipt.usage.token_used == 10
    assert service.usage(Principal("alice")).token_used == 10


def test_a_refused_change_leaves_the_block_by_its_error_and_writes_nothing() -> None:
    store = LockingStore()
    service = TokenService(store, PlanCatalog.default(), SettableClock())

    with pytest.raises(InsufficientTokensError):
        service.consume(Principal("alice"), 1_001)

    assert store.blocks == ["InsufficientTokensError"]
    assert store.load("alice") is None


def test_a_store_without_a_callable_locked_is_used_optimistically() -> None:
    class NotALock(InMemoryStore):
        locked = "not a method"

    store = NotALock()
    service = TokenService(store, PlanCatalog.default(), SettableClock())

    assert service.consume(Principal("alice"), 5).usage.token_used == 5
