"""The read-roll-decide-commit loop every write of every service shares: optimistic, each
attempt made inside the account's row lock when the store can take one, and dated by
the store's clock when it keeps one."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import TypeVar

from tokenplans._ports import AccountStore, Clock, ClockedStore, Commit, RowLockingStore
from tokenplans._rules.decisions import Decision
from tokenplans._rules.events import check_thresholds, events_of
from tokenplans._rules.expiry import Rolled, may_have_outstanding, roll_forward_with_expiry
from tokenplans._rules.quota import open_account
from tokenplans._values.accounts import Account, as_utc
from tokenplans._values.events import DEFAULT_THRESHOLDS
from tokenplans._values.expiring import Outstanding
from tokenplans._values.holds import Hold, HoldKey
from tokenplans._values.limits import check_subject
from tokenplans._values.plans import PlanCatalog
from tokenplans._values.records import one_write_per_hold
from tokenplans.errors import AccountBusyError, WriteConflictError

T = TypeVar("T")
F = TypeVar("F")


class AccountUpdater:
    """Reads, rolls forward and changes accounts of one store, by one catalog and clock."""

    def __init__(
        self,
        store: AccountStore,
        catalog: PlanCatalog,
        clock: Clock,
        *,
        max_attempts: int = 100,
        thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        #: The usage thresholds (percent of the quota) whose crossing is an event.
        self.thresholds = check_thresholds(thresholds)
        self._max_attempts = max_attempts
        # A store that can lock the account row decides inside the lock (see
        # RowLockingStore; isinstance only sees that the name exists, so a ``locked``
        # that is no method counts as none); any other store is used optimistically.
        self._lock: Callable[[str], AbstractContextManager[object]] = _no_lock
        if isinstance(store, RowLockingStore) and callable(store.locked):
            self._lock = store.locked
        # A store with a clock of its own (the database's) dates every decision: see
        # ClockedStore. Without one, the service's clock does.
        self._clocked: ClockedStore | None = None
        if isinstance(store, ClockedStore) and callable(store.load_stamped):
            self._clocked = store

    def now(self) -> datetime:
        """The time of a decision that reads no account: the store's clock when it keeps
        one (:class:`~tokenplans._ports.ClockedStore`), else the service's clock; as
        ``tzinfo=UTC`` (a clock may spell UTC as ZoneInfo("UTC") or return another
        offset, and snapshots hold UTC only: they would refuse it)."""
        if self._clocked is not None:
            stored = self._clocked.current_time()
            if stored is not None:
                return as_utc(stored)
        return as_utc(self.clock.now())

    def _load(self, subject: str) -> tuple[Account | None, datetime]:
        """The stored snapshot and the time to decide on it: the store's clock read with
        it when the store keeps one, else the service's clock; never before the
        account's last entry (moved forward to it), so that an account's entries stay
        in order of time whichever clock, ahead or behind, dated the one before."""
        if self._clocked is None:
            return self.store.load(subject), as_utc(self.clock.now())
        stamped = self._clocked.load_stamped(subject)
        now = as_utc(self.clock.now() if stamped.now is None else stamped.now)
        if stamped.last_entry_at is not None and stamped.last_entry_at > now:
            now = as_utc(stamped.last_entry_at)
        return stamped.account, now

    def account(self, subject: str) -> Account:
        """The subject's snapshot as of now, with due resets and expiries applied; an
        unknown subject reads as a fresh default account. Writes nothing: the pending
        entries are written, stamped at their boundary instants, with the next change."""
        return self.view(subject).change.account

    def view(self, subject: str) -> Rolled:
        """The snapshot as of now and the holds that were open, as of now (an expired one
        shows as expired); writes nothing, as :meth:`account`."""
        return self.view_at(subject)[0]

    def view_at(self, subject: str) -> tuple[Rolled, datetime]:
        """:meth:`view`, and the instant it is as of."""
        stored, now = self._load(check_subject(subject))
        return self._as_of(subject, stored, now), now

    def _as_of(self, subject: str, stored: Account | None, now: datetime) -> Rolled:
        """The stored snapshot (or a fresh one) rolled forward to ``now``, what it has
        outstanding lapsing on the way; that is read (one port call) only when the
        snapshot can have any."""
        if stored is None:
            opened = open_account(subject, self.catalog, now)
            rolled = roll_forward_with_expiry(opened.account, self.catalog, now)
            return Rolled(opened.then(lambda _: rolled.change), {})
        outstanding = (
            self.store.outstanding(subject) if may_have_outstanding(stored) else Outstanding()
        )
        return roll_forward_with_expiry(stored, self.catalog, now, outstanding)

    def update(
        self,
        subject: str,
        decide: Callable[[Account, datetime, F], Decision[T]],
        fetch: Callable[[], F],
    ) -> T:
        """Read the account, roll it forward, ``fetch`` the other facts the decision needs,
        let the pure ``decide`` choose a change, and commit it with a compare-and-write on
        the version; on a lost race, start again from a fresh read. With a store that can
        lock the account (:class:`~tokenplans._ports.RowLockingStore`) each attempt is
        made inside the lock, so concurrent writers of one account queue instead of
        racing; the compare-and-write stays."""
        return self.update_holding(
            subject,
            lambda account, _holds, now, facts: decide(account, now, facts),
            lambda _holds: fetch(),
        )

    def update_holding(
        self,
        subject: str,
        decide: Callable[[Account, Mapping[HoldKey, Hold], datetime, F], Decision[T]],
        fetch: Callable[[Mapping[HoldKey, Hold]], F],
    ) -> T:
        """:meth:`update` for a decision about holds: ``fetch`` and ``decide`` also get
        the holds that were open, as of now (see :meth:`view`), so a hold already read
        with the account is not read again."""
        return self.change_holding(subject, decide, fetch)[0]

    def change_holding(
        self,
        subject: str,
        decide: Callable[[Account, Mapping[HoldKey, Hold], datetime, F], Decision[T]],
        fetch: Callable[[Mapping[HoldKey, Hold]], F],
    ) -> tuple[T, Account]:
        """:meth:`update_holding`, and the account as the decision left it (as committed,
        or as of now when it changed nothing): what an answer shows of the account,
        without reading it again."""
        check_subject(subject)
        for attempt in range(self._max_attempts):
            try:
                with self._lock(subject):
                    return self._attempt(subject, decide, fetch)
            except WriteConflictError:
                _back_off(attempt)
        raise AccountBusyError(f"account {subject!r} is too contended; retry shortly")

    def _attempt(
        self,
        subject: str,
        decide: Callable[[Account, Mapping[HoldKey, Hold], datetime, F], Decision[T]],
        fetch: Callable[[Mapping[HoldKey, Hold]], F],
    ) -> tuple[T, Account]:
        """One read-roll-decide-commit, and the account after it; a lost race raises
        :class:`WriteConflictError`."""
        stored, now = self._load(subject)
        current = self._as_of(subject, stored, now)
        decision = decide(current.change.account, current.holds, now, fetch(current.holds))
        if decision.change is None:
            return decision.result, current.change.account
        entries = current.change.entries + decision.change.entries
        records = one_write_per_hold(current.writes + decision.records)
        # The events this change emits, committed with it (docs/events.md): a change that
        # loses its race or rolls back emits nothing; the next attempt derives them again.
        commit = Commit(
            account=decision.change.account,
            expected_version=0 if stored is None else stored.version,
            entries=entries,
            records=records + events_of(entries, records, self.thresholds, stored),
        )
        if commit.entries or commit.records:
            self.store.commit(commit)
        return decision.result, decision.change.account


def _no_lock(_subject: str) -> AbstractContextManager[object]:
    return nullcontext()


def no_facts() -> None:
    """The ``fetch`` of a decision that needs nothing but the account."""


def _back_off(attempt: int) -> None:
    # Full jitter, capped: contending writers spread out instead of colliding in step.
    time.sleep(random.uniform(0, min(0.02, 0.0002 * 2**attempt)))  # noqa: S311 - not crypto
