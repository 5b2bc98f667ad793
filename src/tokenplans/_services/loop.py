"""The optimistic read-roll-decide-commit loop every write of every service shares."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from tokenplans._ports import AccountStore, Clock, Commit
from tokenplans._rules.decisions import Decision
from tokenplans._rules.quota import open_account, roll_forward
from tokenplans._values.accounts import Account, as_utc
from tokenplans._values.errors import AccountBusyError, WriteConflictError
from tokenplans._values.ledger import Change
from tokenplans._values.limits import check_subject
from tokenplans._values.plans import PlanCatalog

T = TypeVar("T")
F = TypeVar("F")


class AccountUpdater:
    """Reads, rolls forward and changes accounts of one store, by one catalog and clock."""

    def __init__(
        self, store: AccountStore, catalog: PlanCatalog, clock: Clock, *, max_attempts: int = 100
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self._max_attempts = max_attempts

    def now(self) -> datetime:
        """The clock's time as ``tzinfo=UTC``: a clock may spell UTC as ZoneInfo("UTC") or
        return another offset, and snapshots hold UTC only (they would refuse it)."""
        return as_utc(self.clock.now())

    def account(self, subject: str) -> Account:
        """The subject's snapshot as of now, with due resets and expiries applied; an
        unknown subject reads as a fresh default account. Writes nothing: the pending
        entries are written, stamped at their boundary instants, with the next change."""
        now = self.now()
        return self._as_of(subject, self.store.load(check_subject(subject)), now).account

    def _as_of(self, subject: str, stored: Account | None, now: datetime) -> Change:
        """The stored snapshot (or a fresh one) rolled forward to ``now``."""
        base = open_account(subject, self.catalog, now) if stored is None else Change(stored)
        return base.then(lambda account: roll_forward(account, self.catalog, now))

    def update(
        self,
        subject: str,
        decide: Callable[[Account, datetime, F], Decision[T]],
        fetch: Callable[[], F],
    ) -> T:
        """Read the account, roll it forward, ``fetch`` the other facts the decision needs,
        let the pure ``decide`` choose a change, and commit it with a compare-and-write on
        the version; on a lost race, start again from a fresh read."""
        check_subject(subject)
        for attempt in range(self._max_attempts):
            now = self.now()
            stored = self.store.load(subject)
            current = self._as_of(subject, stored, now)
            decision = decide(current.account, now, fetch())
            if decision.change is None:
                return decision.result
            commit = Commit(
                account=decision.change.account,
                expected_version=0 if stored is None else stored.version,
                entries=current.entries + decision.change.entries,
                records=decision.records,
            )
            try:
                self.store.commit(commit)
            except WriteConflictError:
                _back_off(attempt)
                continue
            return decision.result
        raise AccountBusyError(f"account {subject!r} is too contended; retry shortly")


def no_facts() -> None:
    """The ``fetch`` of a decision that needs nothing but the account."""


def _back_off(attempt: int) -> None:
    # Full jitter, capped: contending writers spread out instead of colliding in step.
    time.sleep(random.uniform(0, min(0.02, 0.0002 * 2**attempt)))  # noqa: S311 - not crypto
