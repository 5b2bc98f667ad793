"""The use cases adapters call: usage, history, set plan, consume, grant.

Each takes the :class:`Principal` asking first, then what is asked (a plan, an amount),
then keywords: ``subject`` (whose account; the principal's own when omitted) and the
options. Each checks who may do what (README, "How quotas work") and changes one account
through :meth:`TokenService.update`, the optimistic read-decide-commit loop every write
shares.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

import attrs

from tokenplans.accounts import Account, Usage, as_utc
from tokenplans.errors import (
    AccountBusyError,
    IdempotencyConflictError,
    InvalidRequestError,
    WriteConflictError,
)
from tokenplans.ledger import Change, DebitReceipt, LedgerEntry
from tokenplans.payments import Payment
from tokenplans.permissions import (
    Principal,
    check_can_change_plan,
    check_can_debit,
    check_can_grant,
    check_can_read,
    subject_by_keyword,
)
from tokenplans.plans import PlanCatalog
from tokenplans.ports import AccountStore, Clock, Commit
from tokenplans.rules import (
    change_plan,
    check_amount,
    check_idempotency_key,
    check_subject,
    debit,
    grant,
    open_account,
    roll_forward,
)

T = TypeVar("T")

MAX_PAGE_SIZE = 200
_MAX_CURSOR_DIGITS = 18  # a cursor is a ledger version, which fits a signed 64-bit column


@attrs.frozen
class Decision(Generic[T]):
    """What a use case decided on a snapshot: the change to commit (``None``: nothing to
    write), the result to return once it commits, and what commits with it."""

    change: Change | None
    result: T
    receipt: DebitReceipt | None = None
    payment: Payment | None = None
    event_id: str | None = None


@attrs.frozen
class PlanChange:
    """The result of set-plan: its message ("upgraded to premium with carry-over", "plan
    confirmed", "downgraded to basic") and the usage after."""

    message: str
    usage: Usage


@attrs.frozen
class HistoryPage:
    """Ledger entries newest first; pass ``next_cursor`` back for the next (older) page."""

    entries: Sequence[LedgerEntry]
    next_cursor: str | None


class TokenService:
    """Plans and quotas for many subjects, over one store, one catalog and one clock."""

    def __init__(
        self,
        store: AccountStore,
        catalog: PlanCatalog,
        clock: Clock,
        *,
        max_attempts: int = 100,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self._max_attempts = max_attempts

    # -- reads ---------------------------------------------------------------------

    def account(self, subject: str) -> Account:
        """The subject's snapshot as of now, with due resets and expiries applied; an
        unknown subject reads as a fresh default account. Writes nothing: the pending
        entries are written, stamped at their boundary instants, with the next change."""
        now = self._now()
        return self._as_of(subject, self.store.load(check_subject(subject)), now).account

    def _now(self) -> datetime:
        """The clock's time as ``tzinfo=UTC``: a clock may spell UTC as ZoneInfo("UTC") or
        return another offset, and snapshots hold UTC only (they would refuse it)."""
        return as_utc(self.clock.now())

    def _as_of(self, subject: str, stored: Account | None, now: datetime) -> Change:
        """The stored snapshot (or a fresh one) rolled forward to ``now``."""
        base = open_account(subject, self.catalog, now) if stored is None else Change(stored)
        return base.then(lambda account: roll_forward(account, self.catalog, now))

    @subject_by_keyword("usage(principal, subject=...)")
    def usage(self, principal: Principal, *, subject: str | None = None) -> Usage:
        """The subject's usage as of now (the principal's own unless ``subject`` is given;
        another's needs an admin). Writes nothing."""
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        return Usage.of(self.account(subject))

    @subject_by_keyword("history(principal, subject=..., cursor=..., limit=...)")
    def history(
        self,
        principal: Principal,
        *,
        subject: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> HistoryPage:
        """One page of the subject's ledger, newest first, at most ``limit`` (1-200)
        entries; pass the page's ``next_cursor`` back as ``cursor`` for the older ones."""
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        before = _parse_cursor(cursor)
        entries = self.store.history(check_subject(subject), before_version=before, limit=limit)
        more = len(entries) == limit and entries[-1].version > 1
        return HistoryPage(entries, str(entries[-1].version) if more else None)

    # -- changes -------------------------------------------------------------------

    @subject_by_keyword("set_plan(principal, plan_id, subject=..., reset_used=...)")
    def set_plan(
        self,
        principal: Principal,
        plan_id: str,
        *,
        subject: str | None = None,
        reset_used: bool = False,
    ) -> PlanChange:
        """Move the subject to ``plan_id``: an upgrade carries the remaining tokens over,
        the same plan is confirmed, a downgrade keeps the usage. A user may only confirm or
        step down; upgrades and ``reset_used`` need an admin (or, for a paid plan, a
        payment). A confirmation that changes nothing writes nothing."""
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        target = self.catalog.get(plan_id)

        def decide(account: Account, now: datetime) -> Decision[PlanChange]:
            check_can_change_plan(
                principal,
                subject,
                # As the rules do: a plan dropped from the catalog ranks as the default.
                current=(
                    self.catalog.get(account.plan_id)
                    if account.plan_id in self.catalog
                    else self.catalog.default_plan
                ),
                target=target,
                reset_used=reset_used,
            )
            if target.id == account.plan_id and not (reset_used and account.token_used):
                # Nothing would change but the version: write nothing, so a client calling
                # this in a loop costs reads only.
                return Decision(None, PlanChange("plan confirmed", Usage.of(account)))
            change = change_plan(
                account,
                target,
                self.catalog,
                now,
                reset_used=reset_used,
                actor=principal.subject,
            )
            result = PlanChange(change.entries[-1].message, Usage.of(change.account))
            return Decision(change, result)

        return self.update(subject, decide)

    @subject_by_keyword("consume(principal, amount, subject=..., idempotency_key=...)")
    def consume(
        self,
        principal: Principal,
        amount: int,
        *,
        subject: str | None = None,
        idempotency_key: str | None = None,
    ) -> DebitReceipt:
        """Debit ``amount`` tokens, or raise :class:`InsufficientTokensError` changing
        nothing. With a key, a retry returns the first receipt (``replayed=True``). Keys
        belong to the subject *and* the caller: the same key sent by the user and by an
        admin acting for it are two different requests."""
        subject = principal.subject if subject is None else subject
        check_can_debit(principal, subject)
        check_amount(amount)
        key = check_idempotency_key(idempotency_key)

        def decide(account: Account, now: datetime) -> Decision[DebitReceipt]:
            if key is not None:
                first = self.store.find_receipt(subject, principal.subject, key)
                if first is not None:
                    if first.amount != amount:
                        raise IdempotencyConflictError(key, first.amount, amount)
                    return Decision(None, attrs.evolve(first, replayed=True))
            change = debit(account, amount, now, idempotency_key=key, actor=principal.subject)
            receipt = DebitReceipt(
                subject=subject,
                caller=principal.subject,
                idempotency_key=key,
                amount=amount,
                at=now,
                version=change.account.version,
                usage=Usage.of(change.account),
            )
            return Decision(change, receipt, receipt=receipt if key is not None else None)

        return self.update(subject, decide)

    @subject_by_keyword("grant(principal, amount, subject=...)")
    def grant(self, principal: Principal, amount: int, *, subject: str | None = None) -> Usage:
        """Admin only: add ``amount`` tokens to the subject's quota for this period; they
        lapse with it."""
        subject = principal.subject if subject is None else subject
        check_can_grant(principal)
        check_amount(amount)

        def decide(account: Account, now: datetime) -> Decision[Usage]:
            change = grant(account, amount, now, actor=principal.subject)
            return Decision(change, Usage.of(change.account))

        return self.update(subject, decide)

    def update(self, subject: str, decide: Callable[[Account, datetime], Decision[T]]) -> T:
        """Read the account, roll it forward, let ``decide`` choose a change, and commit it
        with a compare-and-write on the version; on a lost race, start again from a fresh
        read. ``decide`` runs once per attempt and must be pure but for store reads."""
        check_subject(subject)
        for attempt in range(self._max_attempts):
            now = self._now()
            stored = self.store.load(subject)
            current = self._as_of(subject, stored, now)
            decision = decide(current.account, now)
            if decision.change is None:
                return decision.result
            commit = Commit(
                account=decision.change.account,
                expected_version=0 if stored is None else stored.version,
                entries=current.entries + decision.change.entries,
                receipt=decision.receipt,
                payment=decision.payment,
                event_id=decision.event_id,
            )
            try:
                self.store.commit(commit)
            except WriteConflictError:
                _back_off(attempt)
                continue
            return decision.result
        raise AccountBusyError(f"account {subject!r} is too contended; retry shortly")


def _back_off(attempt: int) -> None:
    # Full jitter, capped: contending writers spread out instead of colliding in step.
    time.sleep(random.uniform(0, min(0.02, 0.0002 * 2**attempt)))  # noqa: S311 - not crypto


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not (isinstance(cursor, str) and cursor.isdecimal() and len(cursor) <= _MAX_CURSOR_DIGITS):
        raise InvalidRequestError(f"invalid cursor {cursor!r}")
    return int(cursor)
