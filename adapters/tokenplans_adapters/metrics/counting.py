"""Counting what the store commits, outside the core: a wrapper around any account store.

The core decides and the store writes; this wrapper only watches the store's port: each
commit's ledger entries by kind (debits, holds placed, settled, released and expired,
resets...) once their transaction has committed, and each :class:`WriteConflictError`
(a lost race, retried by the update loop). Every other method is the wrapped store's
own, defined on the wrapper's class (one class per kind of store), so its optional
capabilities (the row lock, the database clock, the reports, the outbox) are seen by
the services exactly as before: Python 3.12 and later check a runtime protocol with
``inspect.getattr_static``, which never sees ``__getattr__``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from tokenplans.ports import Commit, WriteConflictError

from .registry import Metrics

__all__ = ["CountingStore", "counting_store"]

S = TypeVar("S")


class CountingStore:
    """``store`` with its commits and conflicts counted in ``metrics``."""

    def __init__(self, store: Any, metrics: Metrics) -> None:
        self.wrapped = store
        self._metrics = metrics
        # Inside a row-lock block a commit only stages its writes: the transaction
        # commits when the block ends, so its entries are counted then (or never).
        self._local = threading.local()
        # Children of the labelled counters, one per kind, made once.
        self._entries: dict[str, Any] = {}
        self._credits: dict[str, Any] = {}
        if callable(getattr(store, "locked", None)):
            self.locked = self._locked

    def __getattr__(self, name: str) -> Any:
        # Only called for what this class does not define: the store's own methods.
        return getattr(self.wrapped, name)

    def commit(self, commit: Commit) -> None:
        try:
            self.wrapped.commit(commit)
        except WriteConflictError as conflict:
            self._conflict(conflict)
            raise
        staged: list[Commit] | None = getattr(self._local, "staged", None)
        if staged is None:
            self._count(commit)
        else:
            staged.append(commit)

    @contextmanager
    def _locked(self, subject: str) -> Iterator[object]:
        staged: list[Commit] = []
        self._local.staged = staged
        try:
            with self.wrapped.locked(subject) as held:
                yield held
        except WriteConflictError as conflict:
            self._conflict(conflict)
            raise
        finally:
            self._local.staged = None
        for commit in staged:
            self._count(commit)

    def _conflict(self, conflict: WriteConflictError) -> None:
        # Raised by a commit inside a lock block, it passes the block's end too: once.
        if not getattr(conflict, "_tokenplans_counted", False):
            conflict._tokenplans_counted = True  # type: ignore[attr-defined]
            self._metrics.conflicts.inc()

    def _count(self, commit: Commit) -> None:
        self._metrics.commits.inc()
        for entry in commit.entries:
            kind = entry.kind.value
            counter = self._entries.get(kind)
            if counter is None:
                counter = self._entries[kind] = self._metrics.entries.labels(kind)
                self._credits[kind] = self._metrics.credits.labels(kind)
            counter.inc()
            if entry.amount:
                self._credits[kind].inc(entry.amount)


def counting_store(store: S, metrics: Metrics) -> S:
    """``store`` with its commits counted, typed as ``store`` (every attribute but
    ``commit`` and ``locked`` is the store's own)."""
    kind: type[Any] = type(store)
    return cast(S, _counting_class(kind)(store, metrics))


#: The wrapper class made for each kind of store, made once.
_CLASSES: dict[type[Any], type[CountingStore]] = {}


def _counting_class(kind: type[Any]) -> type[CountingStore]:
    """:class:`CountingStore` with each public method of ``kind`` that it does not
    define itself forwarded from its class (see the module's docstring)."""
    made = _CLASSES.get(kind)
    if made is None:
        own = set(dir(CountingStore))
        forwarded = {
            name: _forwarding(name)
            for name in dir(kind)
            if not name.startswith("_") and name not in own and callable(getattr(kind, name))
        }
        made = _CLASSES.setdefault(
            kind, type(f"Counting{kind.__name__}", (CountingStore,), forwarded)
        )
    return made


def _forwarding(name: str) -> Callable[..., Any]:
    def forward(self: CountingStore, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.wrapped, name)(*args, **kwargs)

    forward.__name__ = forward.__qualname__ = name
    return forward
