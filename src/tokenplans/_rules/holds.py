"""The hold rules and decisions: reserve, settle, release, and expiry in the roll-forward.

- **reserve** succeeds only when the amount is at most what remains; then
  ``token_held += amount``. Holds are keyed by the caller who placed them and its id. A
  repeated id with the same request (amount, and the estimate it was priced from) returns
  the open hold and reserves nothing; with another request it is a conflict; a hold that
  is already closed is :class:`AlreadyProcessedError`: a finished request never looks
  like a fresh success.
- **settle** closes an open hold: ``token_held -= held`` and ``token_used += amount``.
  Above the hold, the excess comes out of what remains, and whatever even that cannot
  cover is ``overage``: ``max(0, amount - held - remaining)``, remaining read just before
  (other open holds are never eaten into). A settle after the hold expired is accepted
  (``late``): the tokens were spent, so they are charged the same way with nothing held.
- **release** closes an open hold with nothing used.
- **expiry**: the roll-forward releases every open hold whose ``expires_at`` has passed,
  stamped at that instant, in time order with the period resets and term expiries (the
  one expiry mechanism, ``_rules/expiry``; :func:`hold_expiry` says how a hold lapses).
- A closed hold closes at most once: the same settle or release again returns the first
  result (``replayed``); any other closing request is a conflict naming its final state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import attrs

from tokenplans._values.accounts import Account, with_lots
from tokenplans._values.expiring import Expiry
from tokenplans._values.holds import Hold, HoldKey, HoldStatus, HoldWrite
from tokenplans._values.ledger import Change, EntryKind, HoldFacts, ledger_change
from tokenplans._values.limits import MAX_OPEN_HOLDS
from tokenplans._values.lots import Draw, burn, reserve
from tokenplans._values.model_usage import PricedCall
from tokenplans.errors import (
    AlreadyProcessedError,
    HoldConflictError,
    HoldNotFoundError,
    InsufficientTokensError,
    TooManyHoldsError,
)

from .decisions import Decision
from .lots import give_back, hold_draws
from .quota import for_call


def hold_expiry(hold: Hold) -> Expiry:
    """How an open hold lapses at its ``expires_at``: its tokens are released (a
    ``hold_expired`` entry) and it is stored expired, closed at that instant."""
    return Expiry(
        at=hold.expires_at,
        key=("hold", *hold.key),
        lapse=partial(_expire, hold=hold),
        writes=(HoldWrite(hold.as_of(hold.expires_at), HoldStatus.OPEN),),
    )


def _expire(account: Account, hold: Hold) -> Change:
    return ledger_change(
        account,
        EntryKind.HOLD_EXPIRED,
        hold.expires_at,
        message=f"hold {hold.hold_id} expired: {hold.amount} released",
        amount=hold.amount,
        facts=HoldFacts(hold.hold_id),
        **_given_back(account, hold),
    )


def _given_back(account: Account, hold: Hold) -> dict[str, Any]:
    """The snapshot fields with the hold's credits back to its lots, nothing used."""
    if not account.lots and not hold.draws:  # only the plan lot: only the counter moves
        return {"token_held": account.token_held - hold.amount}
    return with_lots(give_back(account.all_lots, hold_draws(hold))[0])


# -- decisions ---------------------------------------------------------------------------


def decide_reserve(
    account: Account,
    now: datetime,
    *,
    holds: Mapping[HoldKey, Hold],
    stored: Hold | None,
    hold_id: str,
    amount: int,
    ttl_seconds: int,
    actor: str,
    priced: PricedCall | None = None,
) -> Decision[Hold]:
    """Place a hold of ``amount`` for ``ttl_seconds`` for ``actor``, or return the open
    hold ``actor`` already placed with this id (``holds``: the account's open holds as of
    now; ``stored``: the hold with this key as stored, when it was not among them)."""
    request = request_of(priced)
    existing = holds.get((actor, hold_id), stored)
    if existing is not None:
        if existing.amount != amount or not _same_request(existing.request, request):
            raise HoldConflictError(
                existing,
                f"hold {hold_id!r} was placed for another request"
                if existing.amount == amount
                else f"hold {hold_id!r} was placed for {existing.amount} tokens, not {amount}",
            )
        if not existing.is_open:
            raise AlreadyProcessedError(hold=existing)
        return Decision(None, attrs.evolve(existing, replayed=True))
    if amount > account.remaining:
        raise InsufficientTokensError(requested=amount, remaining=account.remaining)
    if sum(hold.is_open for hold in holds.values()) >= MAX_OPEN_HOLDS:
        raise TooManyHoldsError(MAX_OPEN_HOLDS)
    draws: tuple[Draw, ...] = ()
    if account.lots:
        lots, draws, _ = reserve(account.all_lots, amount)
        counters = with_lots(lots)
    else:  # only the plan lot: every credit is its own, no draws
        counters = {"token_held": account.token_held + amount}
    hold = Hold(
        subject=account.subject,
        caller=actor,
        hold_id=hold_id,
        amount=amount,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
        request=request,
        # On an account with only its plan lot every credit is the plan lot's: no draws.
        draws=draws,
    )
    change = ledger_change(
        account,
        EntryKind.HOLD_PLACED,
        now,
        message=f"hold {hold_id} placed: {amount} until {hold.expires_at.isoformat()}"
        + for_call(priced),
        amount=amount,
        facts=HoldFacts(hold_id, draws=hold.draws),
        actor=actor,
        priced=priced,
        **counters,
    )
    return Decision(change, hold, (HoldWrite(hold, None),))


def decide_settle(
    account: Account,
    now: datetime,
    *,
    found: Hold | None,
    hold_id: str,
    amount: int,
    actor: str,
    priced: PricedCall | None = None,
) -> Decision[Hold]:
    """Settle the hold ``found`` (as of now) with the ``amount`` actually used (see the
    module docstring); none found is :class:`HoldNotFoundError` for ``hold_id``."""
    hold = _the_hold(found, hold_id)
    if hold.status is HoldStatus.SETTLED:
        if hold.settled == amount:
            return Decision(None, attrs.evolve(hold, replayed=True))
        raise HoldConflictError(
            hold, f"hold {hold_id!r} was settled for {hold.settled} tokens, not {amount}"
        )
    if hold.status is HoldStatus.RELEASED:
        raise HoldConflictError(hold, f"hold {hold_id!r} was released")
    late = hold.status is HoldStatus.EXPIRED
    held = 0 if late else hold.amount
    overage = max(0, amount - held - account.remaining)
    # The hold's lots turn held into used in its draws' order; the excess draws free
    # credits in burn order, up to what the account has remaining; the rest is overage,
    # on the plan lot (docs/credit-lots.md).
    extra: tuple[Draw, ...] = ()
    if not account.lots and not hold.draws:  # only the plan lot: only the counters move
        counters: dict[str, Any] = {
            "token_used": account.token_used + amount,
            "token_held": account.token_held - held,
        }
    else:
        lots, excess = (
            (account.all_lots, amount)
            if late
            else give_back(account.all_lots, hold_draws(hold), amount)
        )
        lots, extra, _ = burn(lots, excess - overage)
        lots[0] = attrs.evolve(lots[0], used=lots[0].used + overage)
        counters = with_lots(lots)
    settled = attrs.evolve(
        hold,
        status=HoldStatus.SETTLED,
        settled=amount,
        overage=overage,
        late=late,
        closed_at=now,
    )
    change = ledger_change(
        account,
        EntryKind.HOLD_SETTLED,
        now,
        message=(
            f"hold {hold_id} settled{' late' if late else ''}: {amount} used"
            + (f", {overage} over the quota" if overage else "")
            + for_call(priced)
        ),
        amount=amount,
        facts=HoldFacts(hold_id, overage, draws=extra if account.lots else ()),
        actor=actor,
        priced=priced,
        **counters,
    )
    return Decision(change, settled, (HoldWrite(settled, hold.status),))


def decide_release(
    account: Account,
    now: datetime,
    *,
    found: Hold | None,
    hold_id: str,
    actor: str,
) -> Decision[Hold]:
    """Release the hold ``found`` with nothing used; an expired one is returned as it
    is."""
    hold = _the_hold(found, hold_id)
    if hold.status is HoldStatus.SETTLED:
        raise HoldConflictError(hold, f"hold {hold_id!r} was settled")
    if hold.status is not HoldStatus.OPEN:  # released before, or expired: nothing to do
        return Decision(None, attrs.evolve(hold, replayed=True))
    released = attrs.evolve(hold, status=HoldStatus.RELEASED, closed_at=now)
    change = ledger_change(
        account,
        EntryKind.HOLD_RELEASED,
        now,
        message=f"hold {hold_id} released: {hold.amount} free again",
        amount=hold.amount,
        facts=HoldFacts(hold_id),
        actor=actor,
        **_given_back(account, hold),
    )
    return Decision(change, released, (HoldWrite(released, HoldStatus.OPEN),))


def decide_roll_forward(account: Account, _now: datetime, _facts: object) -> Decision[Account]:
    """Write what is due and nothing else (a sweep of expired holds): the roll-forward's
    entries commit, and an account with nothing due writes nothing."""
    return Decision(Change(account), account)


def _the_hold(found: Hold | None, hold_id: str) -> Hold:
    if found is None:
        raise HoldNotFoundError(hold_id)
    return found


def request_of(priced: PricedCall | None) -> str | None:
    """What identifies a priced request beyond its credits: the model call it was priced
    from (model and every token count), as a short digest; ``None`` for a plain amount,
    which its amount identifies."""
    if priced is None:
        return None
    usage = priced.usage
    text = "\x1f".join([usage.model, *(str(count) for count in usage.counts().values())])
    return "call:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _same_request(first: str | None, again: str | None) -> bool:
    """A repeat is the same request when it describes the same call; a hold stored before
    requests were recorded (``None``) is matched on its amount alone."""
    return first is None or first == again
