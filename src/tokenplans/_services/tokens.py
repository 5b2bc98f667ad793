"""The token use cases adapters call: usage, history, set plan, consume, grant, and holds
(reserve, settle, release, read, and the ``holding`` context manager).

Consume, reserve and settle take either an ``amount`` of credits or a model call to price
(``usage=``, or ``estimate=`` for a reserve): the service's pricer turns it into credits
before anything is read, so a call it cannot price changes nothing.

Each takes the :class:`Principal` asking first, then what is asked (a plan, an amount),
then keywords: ``subject`` (whose account; the principal's own when omitted) and the
options. Each checks who may do what (README, "How quotas work") and changes one account
through the shared update loop: it fetches the facts, a pure rule decides.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress

import attrs

from tokenplans._ports import AccountStore, Clock
from tokenplans._pricing.quotes import Pricer, Quote, UnitPricer
from tokenplans._rules.decisions import decide_debit, decide_grant, decide_plan_change
from tokenplans._rules.holds import (
    decide_release,
    decide_reserve,
    decide_roll_forward,
    decide_settle,
)
from tokenplans._rules.permissions import check_can_debit, check_can_grant, check_can_read
from tokenplans._values.accounts import Account, Usage
from tokenplans._values.errors import HoldNotFoundError, InvalidRequestError, TokenplansError
from tokenplans._values.holds import Hold, HoldKey
from tokenplans._values.ledger import DebitReceipt
from tokenplans._values.limits import (
    DEFAULT_HOLD_TTL_SECONDS,
    MAX_AMOUNT,
    check_amount,
    check_cursor,
    check_hold_id,
    check_idempotency_key,
    check_page_size,
    check_settle_amount,
    check_subject,
    check_ttl,
)
from tokenplans._values.model_usage import Estimate, ModelUsage, PricedCall
from tokenplans._values.plans import PlanCatalog
from tokenplans._values.principal import Principal
from tokenplans._values.results import HistoryPage, PlanChange

from .loop import AccountUpdater, no_facts
from .reservations import OnReplay, ReservationState, admit, check_on_replay


class TokenService:
    """Plans and quotas for many subjects, over one store, one catalog and one clock.

    ``pricer`` prices the model calls passed as ``usage=`` or ``estimate=``; without one,
    every counted token costs one credit (:class:`UnitPricer`).
    """

    def __init__(
        self,
        store: AccountStore,
        catalog: PlanCatalog,
        clock: Clock,
        *,
        pricer: Pricer | None = None,
        max_attempts: int = 100,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.pricer: Pricer = UnitPricer() if pricer is None else pricer
        self._accounts = AccountUpdater(store, catalog, clock, max_attempts=max_attempts)

    # -- reads ---------------------------------------------------------------------

    def account(self, subject: str) -> Account:
        """The subject's snapshot as of now, with due resets and expiries applied; an
        unknown subject reads as a fresh default account. Writes nothing."""
        return self._accounts.account(subject)

    def usage(self, principal: Principal, *, subject: str | None = None) -> Usage:
        """The subject's usage as of now (the principal's own unless ``subject`` is given;
        another's needs an admin). Writes nothing."""
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        return Usage.of(self.account(subject))

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
        check_page_size(limit)
        before = check_cursor(cursor)
        entries = self.store.history(check_subject(subject), before_version=before, limit=limit)
        more = len(entries) == limit and entries[-1].version > 1
        return HistoryPage(entries, str(entries[-1].version) if more else None)

    # -- changes -------------------------------------------------------------------

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
        return self._accounts.update(
            subject,
            lambda account, now, _: decide_plan_change(
                account,
                now,
                principal=principal,
                target=target,
                catalog=self.catalog,
                reset_used=reset_used,
            ),
            no_facts,
        )

    def consume(
        self,
        principal: Principal,
        amount: int | None = None,
        *,
        usage: ModelUsage | None = None,
        subject: str | None = None,
        idempotency_key: str | None = None,
    ) -> DebitReceipt:
        """Debit ``amount`` tokens, or the credits a model call's ``usage`` costs (exactly
        one of the two; the receipt's ``priced`` then says what was priced), or raise
        :class:`InsufficientTokensError` changing nothing. With a key, a retry returns the
        first receipt (``replayed=True``). Keys belong to the subject *and* the caller:
        the same key sent by the user and by an admin acting for it are two different
        requests."""
        subject = principal.subject if subject is None else subject
        check_can_debit(principal, subject)
        key = check_idempotency_key(idempotency_key)
        amount, priced = self._charge("consume", amount, usage, check_amount)
        _at_least_one_credit("consume", amount)

        def first_receipt() -> DebitReceipt | None:
            return None if key is None else self.store.find_receipt(subject, principal.subject, key)

        return self._accounts.update(
            subject,
            lambda account, now, first: decide_debit(
                account,
                now,
                amount=amount,
                idempotency_key=key,
                actor=principal.subject,
                first=first,
                priced=priced,
            ),
            first_receipt,
        )

    def grant(self, principal: Principal, amount: int, *, subject: str | None = None) -> Usage:
        """Admin only: add ``amount`` tokens to the subject's quota for this period; they
        lapse with it."""
        subject = principal.subject if subject is None else subject
        check_can_grant(principal)
        check_amount(amount)
        return self._accounts.update(
            subject,
            lambda account, now, _: decide_grant(
                account, now, amount=amount, actor=principal.subject
            ),
            no_facts,
        )

    # -- holds ---------------------------------------------------------------------

    def reserve(
        self,
        principal: Principal,
        amount: int | None = None,
        *,
        estimate: Estimate | None = None,
        hold_id: str | None = None,
        ttl_seconds: int = DEFAULT_HOLD_TTL_SECONDS,
        subject: str | None = None,
    ) -> Hold:
        """Hold ``amount`` tokens, or the most a model call can cost (``estimate``: its
        model, prompt and ``max_output_tokens``; exactly one of the two), for
        ``ttl_seconds`` (1 s to 24 h), or raise :class:`InsufficientTokensError` changing
        nothing. ``hold_id`` is yours (1-255 characters, unique per subject and caller)
        or generated. Reserving an id again with the same request returns its open hold
        (``replayed=True``) and holds nothing more; a hold already closed is
        :class:`AlreadyProcessedError`, another request under the id a
        :class:`HoldConflictError`."""
        subject = principal.subject if subject is None else subject
        check_can_debit(principal, subject)
        check_ttl(ttl_seconds)
        amount, priced = self._hold_for(amount, estimate)
        _at_least_one_credit("reserve", amount)
        chosen = new_hold_id() if hold_id is None else check_hold_id(hold_id)
        caller = principal.subject

        def stored(holds: Mapping[HoldKey, Hold]) -> Hold | None:
            if hold_id is None or (caller, chosen) in holds:  # a generated id is new
                return None
            return self.store.find_hold(subject, chosen, caller=caller)

        hold = self._accounts.update_holding(
            subject,
            lambda account, holds, now, first: decide_reserve(
                account,
                now,
                holds=holds,
                stored=first,
                hold_id=chosen,
                amount=amount,
                ttl_seconds=ttl_seconds,
                actor=caller,
                priced=priced,
            ),
            stored,
        )
        return _answered(hold, priced)

    def settle(
        self,
        principal: Principal,
        hold_id: str,
        amount: int | None = None,
        *,
        usage: ModelUsage | None = None,
        subject: str | None = None,
        caller: str | None = None,
    ) -> Hold:
        """Close the hold with the ``amount`` actually used, or the credits the call's
        ``usage`` costs (exactly one of the two; 0 or more, even above the hold: see the
        README's "Metering a model call"). The same settle again returns the first
        result; any other close of a closed hold is a :class:`HoldConflictError`. Only
        the caller who placed a hold, or an admin, closes it (see :meth:`hold` for which
        hold an id names)."""
        subject = principal.subject if subject is None else subject
        check_can_debit(principal, subject)
        check_hold_id(hold_id)
        amount, priced = self._charge("settle", amount, usage, check_settle_amount)
        hold = self._accounts.update_holding(
            subject,
            lambda account, _holds, now, found: decide_settle(
                account,
                now,
                found=found,
                hold_id=hold_id,
                amount=amount,
                actor=principal.subject,
                priced=priced,
            ),
            self._hold_named(principal, subject, hold_id, caller),
        )
        return _answered(hold, priced)

    def release(
        self,
        principal: Principal,
        hold_id: str,
        *,
        subject: str | None = None,
        caller: str | None = None,
    ) -> Hold:
        """Close the hold with nothing used; releasing again returns the first result, and
        an expired hold is returned as it is. Only its caller, or an admin, closes it."""
        subject = principal.subject if subject is None else subject
        check_can_debit(principal, subject)
        check_hold_id(hold_id)
        return self._accounts.update_holding(
            subject,
            lambda account, _holds, now, found: decide_release(
                account, now, found=found, hold_id=hold_id, actor=principal.subject
            ),
            self._hold_named(principal, subject, hold_id, caller),
        )

    def holds(self, principal: Principal, *, subject: str | None = None) -> Sequence[Hold]:
        """The subject's open holds as of now, oldest first: those the principal placed,
        or every caller's for an admin."""
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        view = self._accounts.view(subject)
        return [
            hold
            for hold in view.holds.values()
            if hold.is_open and (principal.is_admin or hold.caller == principal.subject)
        ]

    def hold(
        self,
        principal: Principal,
        hold_id: str,
        *,
        subject: str | None = None,
        caller: str | None = None,
    ) -> Hold:
        """One of the subject's holds, in any status, as of now. An id names the hold the
        principal placed under it; an admin acting for a subject falls back to the
        subject's own hold, and may name another caller's with ``caller``. Anything else
        (another caller's, another subject's, unknown) is :class:`HoldNotFoundError`."""
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        check_hold_id(hold_id)
        view = self._accounts.view(subject)
        found = self._hold_named(principal, subject, hold_id, caller)(view.holds)
        if found is None:
            raise HoldNotFoundError(hold_id)
        return found.as_of(self._accounts.now())

    @contextmanager
    def holding(
        self,
        principal: Principal,
        amount: int | None = None,
        *,
        estimate: Estimate | None = None,
        hold_id: str | None = None,
        ttl_seconds: int = DEFAULT_HOLD_TTL_SECONDS,
        subject: str | None = None,
        on_replay: OnReplay = "refuse",
    ) -> Iterator[Reservation]:
        """Reserve ``amount`` (or from an ``estimate``) for the block, which is one
        request: settle inside it with what was used (``reservation.settle(n)`` or
        ``settle(usage=...)``), or report as a stream goes (``reservation.report(n)``,
        cumulative). Left without a settle, by an exception or not, the hold is settled
        with the last report, else released, so an aborted call pays for what it
        delivered and frees the rest at once.

        A ``hold_id`` that names a hold another request placed is a duplicate, refused
        before the block runs: :class:`RequestInProgressError` while that hold is open,
        :class:`AlreadyProcessedError` once it is closed. With ``on_replay="call"`` the
        block runs instead, with ``reservation.replayed`` true: answer from your own
        record of the first response, never by calling the model again. A duplicate's
        block never closes the first request's hold."""
        subject = principal.subject if subject is None else subject
        state = admit(
            lambda: self.reserve(
                principal,
                amount,
                estimate=estimate,
                hold_id=hold_id,
                ttl_seconds=ttl_seconds,
                subject=subject,
            ),
            check_on_replay(on_replay),
            self._accounts.now,
        )
        reservation = Reservation(self, principal, subject, state)
        try:
            yield reservation
        except BaseException:
            # The block's own error matters more; an unclosed hold still expires.
            with suppress(TokenplansError):
                reservation.close()
            raise
        reservation.close()

    def sweep_expired_holds(
        self, principal: Principal, *, limit: int = 1000, after: str | None = None
    ) -> Sequence[str]:
        """Admin only: write the due expiries of up to ``limit`` accounts whose expired
        holds nobody has read since (correctness never needs this: expiry is lazy, and
        the next change of an account writes it). Returns the subjects swept, in order;
        pass the last one as ``after`` for the next batch (a subject swept once is not
        found again, whatever its sweep could write)."""
        check_can_grant(principal)
        swept = self.store.subjects_with_expired_holds(
            self._accounts.now(), limit=limit, after=after
        )
        for subject in swept:
            self._accounts.update_holding(
                subject,
                lambda account, _holds, now, _: decide_roll_forward(account, now, None),
                lambda _holds: None,
            )
        return swept

    # -- pricing -------------------------------------------------------------------

    def _charge(
        self,
        what: str,
        amount: int | None,
        usage: ModelUsage | None,
        check: Callable[[object], int],
    ) -> tuple[int, PricedCall | None]:
        """The credits of a request that gives an ``amount`` (checked by ``check``) or a
        model call's ``usage`` to price, exactly one; and what was priced."""
        if (amount is None) == (usage is None):
            raise InvalidRequestError(f"{what} takes an amount or a usage: exactly one of them")
        if usage is None:
            return check(amount), None
        if not isinstance(usage, ModelUsage):
            raise InvalidRequestError(f"usage must be a ModelUsage, got {usage!r}")
        return _priced(usage, self.pricer.price(usage))

    def _hold_for(
        self, amount: int | None, estimate: Estimate | None
    ) -> tuple[int, PricedCall | None]:
        """What a reserve holds: its ``amount``, or the most its ``estimate`` can cost."""
        if (amount is None) == (estimate is None):
            raise InvalidRequestError("reserve takes an amount or an estimate: exactly one of them")
        if estimate is None:
            return check_amount(amount), None
        if not isinstance(estimate, Estimate):
            raise InvalidRequestError(f"estimate must be an Estimate, got {estimate!r}")
        quote = self.pricer.estimate(
            estimate.model, estimate.input_tokens, estimate.max_output_tokens
        )
        return _priced(estimate.as_usage(), quote)

    def _hold_named(
        self, principal: Principal, subject: str, hold_id: str, caller: str | None
    ) -> Callable[[Mapping[HoldKey, Hold]], Hold | None]:
        """The fetch of the hold ``hold_id`` names for ``principal`` (see :meth:`hold`):
        from the open holds read with the account, else from the store."""
        if caller is not None and caller != principal.subject and not principal.is_admin:
            callers: tuple[str, ...] = ()  # another caller's hold: not the user's to see
        elif caller is not None:
            callers = (caller,)
        elif principal.is_admin and principal.subject != subject:
            callers = (principal.subject, subject)
        else:
            callers = (principal.subject,)

        def fetch(holds: Mapping[HoldKey, Hold]) -> Hold | None:
            for who in callers:
                found = holds.get((who, hold_id)) or self.store.find_hold(
                    subject, hold_id, caller=who
                )
                if found is not None:
                    return found
            return None

        return fetch


def _priced(usage: ModelUsage, quote: Quote) -> tuple[int, PricedCall]:
    """A quote's credits, within what one request may charge, and the fact to record."""
    if quote.credits > MAX_AMOUNT:
        raise InvalidRequestError(
            f"the call costs {quote.credits} credits, more than one request may charge "
            f"({MAX_AMOUNT})"
        )
    return quote.credits, PricedCall(usage, quote.credits, quote.price_version)


def _at_least_one_credit(what: str, credits: int) -> None:
    """A debit or a hold costs at least one credit, priced or not (an ``amount`` of 0 is
    refused by its check): each one writes rows, and rows nobody pays for would let an
    account grow without bound. A settle of 0 stays valid: it closes a hold."""
    if credits < 1:
        raise InvalidRequestError(
            f"the call costs 0 credits: {what} takes at least 1 (a model the price book "
            "prices at 0, or a call of no tokens, is not metered)"
        )


def _answered(hold: Hold, priced: PricedCall | None) -> Hold:
    """The hold a priced reserve or settle answers: with the call it was priced from."""
    return hold if priced is None else attrs.evolve(hold, priced=priced)


def new_hold_id() -> str:
    """A generated hold id: ``hold_`` and 128 random bits, unguessable."""
    return "hold_" + secrets.token_urlsafe(16)


class Reservation:
    """The hold of a :meth:`TokenService.holding` block: ``settle`` it, ``report`` what a
    stream used so far, or ``release`` it. ``replayed`` says the hold is another
    request's (the block was let run by ``on_replay="call"``): leave it alone."""

    def __init__(
        self, service: TokenService, principal: Principal, subject: str, state: ReservationState
    ) -> None:
        self._service = service
        self._principal = principal
        self._subject = subject
        self._state = state

    @property
    def hold(self) -> Hold:
        return self._state.hold

    @property
    def hold_id(self) -> str:
        return self.hold.hold_id

    @property
    def replayed(self) -> bool:
        return self._state.replayed

    def settle(self, amount: int | None = None, *, usage: ModelUsage | None = None) -> Hold:
        """Settle with the tokens actually used, or the call's ``usage`` to price; the
        block then leaves the hold alone."""
        self._state.hold = self._service.settle(
            self._principal, self.hold_id, amount, usage=usage, subject=self._subject
        )
        return self.hold

    def report(self, amount: int | None = None, *, usage: ModelUsage | None = None) -> None:
        """What the call has used so far, cumulative (each report replaces the last):
        settled when the block ends without a settle, however it ends. Writes nothing."""
        self._state.report(amount, usage)

    def release(self) -> Hold:
        """Release now, with nothing used."""
        self._state.hold = self._service.release(
            self._principal, self.hold_id, subject=self._subject
        )
        return self.hold

    def close(self) -> None:
        """What leaving the block does: settle the last report, or release; nothing for
        a hold already closed or placed by another request."""
        closing = self._state.closing()
        if closing is None:
            return
        amount, usage = closing
        if amount is None and usage is None:
            self.release()
        else:
            self.settle(amount, usage=usage)
