"""The hold use cases: reserve, settle, release, read, the ``holding`` block, and the sweep
of expired holds. :class:`~tokenplans.TokenService` has them as its own methods.

A reserve is a :class:`~tokenplans.Reserve` command: ``reserve``, ``holding`` (and the
async and FastAPI forms) take one as it is, or its fields as arguments, and every check
below reads the command, so a new reserve option is declared once, on the command.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Unpack

from tokenplans._rules.decisions import Decision
from tokenplans._rules.holds import (
    decide_release,
    decide_reserve,
    decide_roll_forward,
    decide_settle,
)
from tokenplans._rules.permissions import check_can_debit, check_can_read, check_is_admin
from tokenplans._values.accounts import Account
from tokenplans._values.commands import Reserve, ReserveOptions, Settle, command_of
from tokenplans._values.holds import Hold, HoldKey
from tokenplans._values.limits import check_hold_id, check_settle_amount, check_ttl
from tokenplans._values.model_usage import Estimate, ModelUsage
from tokenplans._values.principal import Principal
from tokenplans.errors import HoldNotFoundError, TokenplansError

from .charges import answered, at_least_one_credit, charge, hold_for
from .parts import ServiceParts, whose
from .reservations import OnReplay, ReservationState, admit, check_on_replay


def reserve_command(
    amount: int | Reserve | None,
    estimate: Estimate | None,
    hold_id: str | None,
    options: ReserveOptions,
) -> Reserve:
    """The reserve asked for: a :class:`Reserve` given as it is, or made of its fields."""
    return command_of(Reserve, amount, estimate=estimate, hold_id=hold_id, **options)


class HoldUseCases(ServiceParts):
    """Holds on the accounts of one store (README, "Metering a model call")."""

    def reserve(
        self,
        principal: Principal,
        amount: int | Reserve | None = None,
        *,
        estimate: Estimate | None = None,
        hold_id: str | None = None,
        subject: str | None = None,
        **options: Unpack[ReserveOptions],
    ) -> Hold:
        """Hold ``amount`` tokens, or the most a model call can cost (``estimate``: its
        model, prompt and ``max_output_tokens``; exactly one of the two), for
        ``ttl_seconds`` (1 s to 24 h), or raise :class:`InsufficientTokensError` changing
        nothing. ``hold_id`` is yours (1-255 characters, unique per subject and caller)
        or generated. Reserving an id again with the same request returns its open hold
        (``replayed=True``) and holds nothing more; a hold already closed is
        :class:`AlreadyProcessedError`, another request under the id a
        :class:`HoldConflictError`. A :class:`~tokenplans.Reserve` may stand for the
        amount and the options."""
        command = reserve_command(amount, estimate, hold_id, options)
        subject = whose(principal, subject)
        check_can_debit(principal, subject)
        ttl_seconds = check_ttl(command.ttl_seconds)
        held, priced = hold_for(self.pricer, command.amount, command.estimate)
        at_least_one_credit("reserve", held)
        given = command.hold_id
        chosen = new_hold_id() if given is None else check_hold_id(given)
        caller = principal.subject

        first_attempt = True

        def decide(
            account: Account, holds: Mapping[HoldKey, Hold], now: datetime, _: None
        ) -> Decision[Hold]:
            def deciding(stored: Hold | None) -> Decision[Hold]:
                return decide_reserve(
                    account,
                    now,
                    holds=holds,
                    stored=stored,
                    hold_id=chosen,
                    amount=held,
                    ttl_seconds=ttl_seconds,
                    actor=caller,
                    priced=priced,
                )

            nonlocal first_attempt
            # A generated id is new, and an open hold is among ``holds``.
            if given is None or (caller, chosen) in holds:
                return deciding(None)
            # A client's id is nearly always new too, so the first attempt takes it as new
            # without reading it. If a closed hold has it, the new hold's insert conflicts
            # (the store's rule for a key already stored) and nothing is written. A retry,
            # or a first decision that refuses to place the hold, reads the stored hold and
            # decides by it, as a read before deciding would have.
            if first_attempt:
                first_attempt = False
                with suppress(TokenplansError):
                    return deciding(None)
            return deciding(self.store.find_hold(subject, chosen, caller=caller))

        hold, after = self._accounts.change_holding(subject, decide, lambda _holds: None)
        return answered(hold, after, priced)

    def settle(
        self,
        principal: Principal,
        hold_id: str,
        amount: int | Settle | None = None,
        *,
        usage: ModelUsage | None = None,
        subject: str | None = None,
        caller: str | None = None,
    ) -> Hold:
        """Close the hold with the ``amount`` actually used, or the credits the call's
        ``usage`` costs (exactly one of the two, or a :class:`~tokenplans.Settle`; 0 or
        more, even above the hold: see "Metering a model call"). The same settle again
        returns the first result; any other close of a closed hold is a
        :class:`HoldConflictError`. Only the caller who placed a hold, or an admin,
        closes it (see :meth:`hold` for which hold an id names)."""
        command = command_of(Settle, amount, usage=usage)
        subject = whose(principal, subject)
        check_can_debit(principal, subject)
        check_hold_id(hold_id)
        used, priced = charge(
            self.pricer, "settle", command.amount, command.usage, check_settle_amount
        )
        hold, after = self._accounts.change_holding(
            subject,
            lambda account, _holds, now, found: decide_settle(
                account,
                now,
                found=found,
                hold_id=hold_id,
                amount=used,
                actor=principal.subject,
                priced=priced,
            ),
            self._hold_named(principal, subject, hold_id, caller),
        )
        return answered(hold, after, priced)

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
        subject = whose(principal, subject)
        check_can_debit(principal, subject)
        check_hold_id(hold_id)
        hold, after = self._accounts.change_holding(
            subject,
            lambda account, _holds, now, found: decide_release(
                account, now, found=found, hold_id=hold_id, actor=principal.subject
            ),
            self._hold_named(principal, subject, hold_id, caller),
        )
        return answered(hold, after)

    def holds(self, principal: Principal, *, subject: str | None = None) -> Sequence[Hold]:
        """The subject's open holds as of now, oldest first: those the principal placed,
        or every caller's for an admin."""
        subject = whose(principal, subject)
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
        subject = whose(principal, subject)
        check_can_read(principal, subject)
        check_hold_id(hold_id)
        view, now = self._accounts.view_at(subject)
        found = self._hold_named(principal, subject, hold_id, caller)(view.holds)
        if found is None:
            raise HoldNotFoundError(hold_id)
        return answered(found.as_of(now), view.change.account)

    @contextmanager
    def holding(
        self,
        principal: Principal,
        amount: int | Reserve | None = None,
        *,
        estimate: Estimate | None = None,
        hold_id: str | None = None,
        subject: str | None = None,
        on_replay: OnReplay = "refuse",
        **options: Unpack[ReserveOptions],
    ) -> Iterator[Reservation]:
        """Reserve ``amount`` (or from an ``estimate``, or a :class:`~tokenplans.Reserve`)
        for the block, which is one request: settle inside it with what was used
        (``reservation.settle(n)`` or ``settle(usage=...)``), or report as a stream goes
        (``reservation.report(n)``, cumulative). Left without a settle, by an exception
        or not, the hold is settled with the last report, else released, so an aborted
        call pays for what it delivered and frees the rest at once.

        A ``hold_id`` that names a hold another request placed is a duplicate, refused
        before the block runs: :class:`RequestInProgressError` while that hold is open,
        :class:`AlreadyProcessedError` once it is closed. With ``on_replay="call"`` the
        block runs instead, with ``reservation.replayed`` true: answer from your own
        record of the first response, never by calling the model again. A duplicate's
        block never closes the first request's hold."""
        command = reserve_command(amount, estimate, hold_id, options)
        subject = whose(principal, subject)
        state = admit(
            lambda: self.reserve(principal, command, subject=subject),
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
        check_is_admin(principal, "sweep expired holds")
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


def new_hold_id() -> str:
    """A generated hold id: ``hold_`` and 128 random bits, unguessable."""
    return "hold_" + secrets.token_urlsafe(16)


class Reservation:
    """The hold of a :meth:`TokenService.holding` block: ``settle`` it, ``report`` what a
    stream used so far, or ``release`` it. ``replayed`` says the hold is another
    request's (the block was let run by ``on_replay="call"``): leave it alone."""

    def __init__(
        self, service: HoldUseCases, principal: Principal, subject: str, state: ReservationState
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
