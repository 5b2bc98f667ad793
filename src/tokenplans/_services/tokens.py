"""The token use cases adapters call: usage, history, set plan, consume, grant, and holds
(reserve, settle, release, read, and the ``holding`` context manager, in :mod:`.holds`).

Consume, reserve and settle take either an ``amount`` of credits or a model call to price
(``usage=``, or ``estimate=`` for a reserve): the service's pricer turns it into credits
before anything is read (:mod:`.charges`), so a call it cannot price changes nothing.

Each takes the :class:`Principal` asking first, then what is asked (a plan, an amount,
or the whole request as a command of :mod:`tokenplans._values.commands`), then keywords:
``subject`` (whose account; the principal's own when omitted) and the options. Each
checks who may do what (README, "How quotas work") and changes one account through the
shared update loop: it fetches the facts, a pure rule decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from tokenplans._ports import AccountStore, Clock, EventStore
from tokenplans._pricing.quotes import Pricer, UnitPricer
from tokenplans._rules.checks import decide_check
from tokenplans._rules.decisions import (
    LOT_CALLER,
    decide_debit,
    decide_grant,
    decide_grant_lot,
    decide_plan_change,
    decide_void,
)
from tokenplans._rules.permissions import (
    check_can_debit,
    check_can_grant,
    check_can_read,
    check_is_admin,
)
from tokenplans._values.accounts import Account, Usage
from tokenplans._values.checks import CheckResult
from tokenplans._values.commands import Check, Consume, Grant, SetPlan, command_of
from tokenplans._values.events import DEFAULT_THRESHOLDS, EventPage
from tokenplans._values.ledger import DebitReceipt
from tokenplans._values.limits import (
    check_amount,
    check_cursor,
    check_feature,
    check_idempotency_key,
    check_page_size,
    check_subject,
)
from tokenplans._values.lots import Lot, check_lot_id, check_priority
from tokenplans._values.model_usage import Estimate, ModelUsage
from tokenplans._values.plans import PlanCatalog
from tokenplans._values.principal import Principal
from tokenplans._values.results import HistoryPage, PlanChange
from tokenplans.errors import InvalidRequestError, LotNotFoundError

from .charges import at_least_one_credit, charge, hold_for
from .holds import HoldUseCases, Reservation
from .loop import AccountUpdater
from .parts import whose
from .reports import ReportUseCases

__all__ = ["Reservation", "TokenService"]


class TokenService(HoldUseCases, ReportUseCases):
    """Plans and quotas for many subjects, over one store, one catalog and one clock.

    ``pricer`` prices the model calls passed as ``usage=`` or ``estimate=``; without one,
    every counted token costs one credit (:class:`UnitPricer`). ``thresholds`` are the
    percentages of the quota whose crossing is a ``usage.threshold_crossed`` event
    (docs/events.md).
    """

    def __init__(
        self,
        store: AccountStore,
        catalog: PlanCatalog,
        clock: Clock,
        *,
        pricer: Pricer | None = None,
        max_attempts: int = 100,
        thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.pricer = UnitPricer() if pricer is None else pricer
        self._accounts = AccountUpdater(
            store, catalog, clock, max_attempts=max_attempts, thresholds=thresholds
        )

    # -- reads ---------------------------------------------------------------------

    def account(self, subject: str) -> Account:
        """The subject's snapshot as of now, with due resets and expiries applied; an
        unknown subject reads as a fresh default account. Writes nothing."""
        return self._accounts.account(subject)

    def usage(self, principal: Principal, *, subject: str | None = None) -> Usage:
        """The subject's usage as of now (the principal's own unless ``subject`` is given;
        another's needs an admin). Writes nothing."""
        subject = whose(principal, subject)
        check_can_read(principal, subject)
        return Usage.of(self.account(subject))

    def check(
        self,
        principal: Principal,
        amount: int | Check | None = None,
        *,
        estimate: Estimate | None = None,
        feature: str | None = None,
        subject: str | None = None,
    ) -> CheckResult:
        """Whether a debit of ``amount`` credits, a reserve of what ``estimate`` can
        cost (priced as :meth:`reserve` prices it), or the plan's ``feature`` is allowed
        now: exactly one of the three, or a :class:`~tokenplans.Check`. Refusals are
        answers, not errors (``allowed`` false, ``reason`` why); nothing is written and
        an unknown subject reads as a fresh default account, as :meth:`usage` does. The
        answer may be stale a moment later: only a consume or a reserve takes credits."""
        command = command_of(Check, amount, estimate=estimate, feature=feature)
        subject = whose(principal, subject)
        check_can_read(principal, subject)
        asked = [command.amount, command.estimate, command.feature]
        if sum(value is not None for value in asked) != 1:
            raise InvalidRequestError(
                "check takes an amount, an estimate or a feature: exactly one of them"
            )
        requested: int | None = None
        if command.feature is None:
            requested, _priced = hold_for(self.pricer, command.amount, command.estimate)
            at_least_one_credit("check", requested)
        else:
            check_feature(command.feature)
        account = self.account(subject)
        return decide_check(
            account,
            self.catalog.features_of(account.plan_id),
            requested=requested,
            feature=command.feature,
        )

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
        subject = whose(principal, subject)
        check_can_read(principal, subject)
        check_page_size(limit)
        before = check_cursor(cursor)
        entries = self.store.history(check_subject(subject), before_version=before, limit=limit)
        more = len(entries) == limit and entries[-1].version > 1
        return HistoryPage(entries, str(entries[-1].version) if more else None)

    def events(self, principal: Principal, *, after: int = 0, limit: int = 100) -> EventPage:
        """The outbox's events (an admin's read), oldest first: up to ``limit`` (1-200)
        with a position above ``after``; pass the page's ``next_after`` back for more.
        Raises :class:`TypeError` when the store keeps no outbox."""
        check_is_admin(principal, "read the events")
        check_page_size(limit)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidRequestError(f"after must be a non-negative integer, got {after!r}")
        if not isinstance(self.store, EventStore):
            raise TypeError(f"{type(self.store).__name__} keeps no outbox of events")
        return self.store.events(after=after, limit=limit)

    # -- changes -------------------------------------------------------------------

    def set_plan(
        self,
        principal: Principal,
        plan_id: str | SetPlan,
        *,
        subject: str | None = None,
        reset_used: bool = False,
        idempotency_key: str | None = None,
    ) -> PlanChange:
        """Move the subject to ``plan_id`` (or as a :class:`~tokenplans.SetPlan` says):
        an upgrade carries the remaining tokens over, the same plan is confirmed, a
        downgrade keeps the usage. A user may only confirm or step down; upgrades and
        ``reset_used`` need an admin (or, for a paid plan, a payment). A confirmation
        that changes nothing writes nothing. With a key, a retry of a change made returns
        its first answer and changes nothing (keys as for :meth:`consume`)."""
        command = command_of(
            SetPlan, plan_id, reset_used=reset_used, idempotency_key=idempotency_key
        )
        subject = whose(principal, subject)
        check_can_read(principal, subject)
        key = check_idempotency_key(command.idempotency_key)
        target = self.catalog.get(command.plan)
        first_receipt = self._first_receipt(subject, principal, key)
        return self._accounts.update_holding(
            subject,
            lambda account, holds, now, first: decide_plan_change(
                account,
                now,
                principal=principal,
                target=target,
                catalog=self.catalog,
                reset_used=command.reset_used,
                idempotency_key=key,
                first=first,
                holds=holds,
            ),
            lambda _holds: first_receipt(),
        )

    def consume(
        self,
        principal: Principal,
        amount: int | Consume | None = None,
        *,
        usage: ModelUsage | None = None,
        subject: str | None = None,
        idempotency_key: str | None = None,
    ) -> DebitReceipt:
        """Debit ``amount`` tokens, or the credits a model call's ``usage`` costs (exactly
        one of the two, or a :class:`~tokenplans.Consume`; the receipt's ``priced`` then
        says what was priced), or raise :class:`InsufficientTokensError` changing
        nothing. With a key, a retry returns the first receipt (``replayed=True``). Keys
        belong to the subject *and* the caller: the same key sent by the user and by an
        admin acting for it are two different requests."""
        command = command_of(Consume, amount, usage=usage, idempotency_key=idempotency_key)
        subject = whose(principal, subject)
        check_can_debit(principal, subject)
        key = check_idempotency_key(command.idempotency_key)
        debit, priced = charge(self.pricer, "consume", command.amount, command.usage, check_amount)
        at_least_one_credit("consume", debit)

        return self._accounts.update(
            subject,
            lambda account, now, first: decide_debit(
                account,
                now,
                amount=debit,
                idempotency_key=key,
                actor=principal.subject,
                first=first,
                priced=priced,
            ),
            self._first_receipt(subject, principal, key),
        )

    def grant(
        self,
        principal: Principal,
        amount: int | Grant,
        *,
        subject: str | None = None,
        idempotency_key: str | None = None,
        expires: str | datetime | None = None,
        priority: int | None = None,
        lot_id: str | None = None,
    ) -> Usage:
        """Admin only: add ``amount`` tokens (or a :class:`~tokenplans.Grant`'s) to the
        subject's quota for this period; they lapse with it. With a key, a retry returns
        the usage just after the first grant and grants nothing (keys as for
        :meth:`consume`).

        With ``expires`` (``"period"``, ``"never"``, or an aware instant: a datetime or
        ISO 8601 text), ``priority``
        (0-1000, lower burns first) or ``lot_id`` (yours: the same grant again replays,
        another under the id is a :class:`LotConflictError`), the grant is a promotional
        lot of its own, which plan changes and resets never touch (docs/credit-lots.md);
        at most 100 live lots per account (:class:`TooManyLotsError`)."""
        command = command_of(
            Grant,
            amount,
            idempotency_key=idempotency_key,
            expires=_instant_text(expires) if isinstance(expires, datetime) else expires,
            priority=priority,
            lot_id=lot_id,
        )
        subject = whose(principal, subject)
        check_can_grant(principal)
        granted = check_amount(command.amount)
        key = check_idempotency_key(command.idempotency_key)
        if command.makes_lot:
            return self._grant_lot(principal, subject, command, granted)
        return self._accounts.update(
            subject,
            lambda account, now, first: decide_grant(
                account,
                now,
                amount=granted,
                actor=principal.subject,
                idempotency_key=key,
                first=first,
            ),
            self._first_receipt(subject, principal, key),
        )

    def _grant_lot(self, principal: Principal, subject: str, command: Grant, granted: int) -> Usage:
        lot_id = None if command.lot_id is None else check_lot_id(command.lot_id)
        priority = 0 if command.priority is None else check_priority(command.priority)
        if command.idempotency_key is not None:
            raise InvalidRequestError(
                "a grant of a lot of its own is made idempotent by its lot_id, "
                "not an idempotency_key"
            )

        def fetch() -> DebitReceipt | None:
            if lot_id is None:
                return None
            return self.store.find_receipt(subject, LOT_CALLER, lot_id)

        return self._accounts.update(
            subject,
            lambda account, now, first: decide_grant_lot(
                account,
                now,
                amount=granted,
                expires=command.expires,
                priority=priority,
                lot_id=lot_id,
                actor=principal.subject,
                first=first,
            ),
            fetch,
        )

    def void_lot(self, principal: Principal, lot_id: str, *, subject: str) -> Usage:
        """Admin only: void the subject's lot ``lot_id``: its free remainder is forfeited
        (a ``lot_voided`` entry); used credits stay used, held ones are forfeited when
        their holds close. Voiding a lot still listed (expired or voided, its holds still
        open) changes nothing; one that left the account is :class:`LotNotFoundError`."""
        check_can_grant(principal)
        subject = check_subject(subject)
        if not isinstance(lot_id, str) or not 1 <= len(lot_id) <= 255:  # noqa: PLR2004
            raise LotNotFoundError(str(lot_id)[:255])
        return self._accounts.update(
            subject,
            lambda account, now, _: decide_void(
                account, now, lot_id=lot_id, actor=principal.subject
            ),
            no_receipt,
        )

    def lots(self, principal: Principal, *, subject: str | None = None) -> tuple[Lot, ...]:
        """The subject's live lots as of now, in burn order (the plan lot among them).
        Writes nothing."""
        return self.usage(principal, subject=subject).lots

    def _first_receipt(
        self, subject: str, principal: Principal, key: str | None
    ) -> Callable[[], DebitReceipt | None]:
        """What the update loop fetches before deciding a keyed request: the receipt the
        key left, if any (keys belong to the subject and the caller)."""
        if key is None:
            return no_receipt
        return lambda: self.store.find_receipt(subject, principal.subject, key)


def no_receipt() -> DebitReceipt | None:
    """No key, no receipt to look for."""
    return None


def _instant_text(moment: datetime) -> str:
    """A grant's ``expires`` given as a datetime, as the ISO 8601 text the command
    carries (a naive one is refused: an instant needs its offset)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRequestError("expires must carry its offset (e.g. 2027-01-01T00:00:00Z)")
    return moment.isoformat()
