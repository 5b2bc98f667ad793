"""The lot rules: grants with their own expiry, void, lot expiry in the roll-forward, and
how a hold's credits go back to their lots (docs/credit-lots.md).

Every function takes the account's lots as :attr:`Account.all_lots` (the plan lot among
them) and returns the snapshot fields :func:`with_lots` computes, so the counters are
always the sums over the live lots.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial

import attrs

from tokenplans._values.accounts import Account, with_lots
from tokenplans._values.expiring import Expiry
from tokenplans._values.holds import Hold, HoldKey, HoldWrite
from tokenplans._values.ledger import Change, EntryKind, LotFacts, ledger_change
from tokenplans._values.lots import (
    PLAN_LOT_ID,
    Draw,
    Lot,
    LotSource,
    LotStatus,
)


def hold_draws(hold: Hold) -> tuple[Draw, ...]:
    """The lots a hold took its credits from: its draws, or (none recorded: it was placed
    on an account with only its plan lot) the plan lot."""
    return hold.draws or (Draw(PLAN_LOT_ID, hold.amount),)


def index_of(lots: Sequence[Lot], lot_id: str) -> int:
    """Where the lot ``lot_id`` is in ``lots``; the plan lot's place (first) when it is not
    there (a lot never leaves while a hold holds its credits, so a hold's draw always
    finds its lot; the plan lot stands in for anything else)."""
    for n, lot in enumerate(lots):
        if lot.lot_id == lot_id:
            return n
    return 0


def give_back(lots: list[Lot], draws: Iterable[Draw], used: int = 0) -> tuple[list[Lot], int]:
    """A hold's credits back from ``lots``: each draw's lot turns held into used, in the
    draws' order, up to ``used`` in all; the rest is free again, and forfeited at once
    when the lot has expired or was voided meanwhile. Returns the lots and what of
    ``used`` the draws did not cover."""
    left = used
    lots = list(lots)
    for draw in draws:
        n = index_of(lots, draw.lot_id)
        lot = lots[n]
        take = min(draw.amount, left)
        left -= take
        freed = draw.amount - take
        lot = attrs.evolve(lot, held=max(0, lot.held - draw.amount), used=lot.used + take)
        if lot.status is not LotStatus.ACTIVE:
            lot = attrs.evolve(lot, amount=max(lot.used + lot.held, lot.amount - freed))
        lots[n] = lot
    return lots, left


def repay_debt(lots: list[Lot], new: Lot) -> tuple[list[Lot], Lot, tuple[Draw, ...]]:
    """A new lot first repays the plan lot's overage (its used and held beyond its
    amount): that part of the plan lot's use moves to the new lot, recorded as a draw."""
    plan_at = index_of(lots, PLAN_LOT_ID)
    plan = lots[plan_at]
    debt = min(plan.used, max(0, plan.used + plan.held - plan.amount), new.amount)
    if debt <= 0:
        return lots, new, ()
    lots = list(lots)
    lots[plan_at] = attrs.evolve(plan, used=plan.used - debt)
    return lots, attrs.evolve(new, used=new.used + debt), (Draw(new.lot_id, debt),)


def add_lot(
    account: Account,
    lot: Lot,
    now: datetime,
    *,
    kind: EntryKind,
    message: str,
    actor: str | None = None,
) -> Change:
    """``account`` with the new ``lot`` (which first repays the plan lot's debt)."""
    lots, lot, draws = repay_debt(account.all_lots, lot)
    return ledger_change(
        account,
        kind,
        now,
        message=message,
        amount=lot.amount,
        actor=actor,
        facts=LotFacts(lot.lot_id, draws),
        **with_lots([*lots, lot]),
    )


def forfeit(
    account: Account, lot_id: str, at: datetime, *, voided: bool, actor: str | None = None
) -> Change:
    """The lot's free remainder forfeited (expiry or void): its amount drops to what is
    used and held; it leaves the sums once nothing is held."""
    lots = account.all_lots
    n = index_of(lots, lot_id)
    lot = lots[n]
    forfeited = lot.remaining
    lots[n] = attrs.evolve(
        lot,
        amount=lot.amount - forfeited,
        status=LotStatus.VOIDED if voided else LotStatus.EXPIRED,
    )
    what = "voided" if voided else "expired"
    return ledger_change(
        account,
        EntryKind.LOT_VOIDED if voided else EntryKind.LOT_EXPIRED,
        at,
        message=f"lot {lot_id} {what}: {forfeited} forfeited",
        amount=forfeited,
        actor=actor,
        facts=LotFacts(lot_id),
        **with_lots(lots),
    )


def lot_expiry(lot: Lot) -> Expiry:
    """How an active lot with an expiry lapses at it (a ``lot_expired`` entry)."""
    if lot.expires_at is None:  # pragma: no cover - only lots with an expiry lapse
        raise ValueError("a lot without an expiry cannot lapse")
    return Expiry(
        at=lot.expires_at,
        key=("lot", lot.lot_id),
        lapse=partial(_lapse, lot_id=lot.lot_id, at=lot.expires_at),
    )


def _lapse(account: Account, lot_id: str, at: datetime) -> Change:
    return forfeit(account, lot_id, at, voided=False)


def lot_expiries_due(account: Account, now: datetime) -> list[Expiry]:
    """The expiries of the account's active lots due by ``now``."""
    if not account.lots:
        return []
    return [
        lot_expiry(lot)
        for lot in account.lots
        if lot.status is LotStatus.ACTIVE and lot.expires_at is not None and lot.expires_at <= now
    ]


def move_plan_holds(
    holds: Mapping[HoldKey, Hold], from_lots: Iterable[str], to_lot: str
) -> tuple[HoldWrite, ...]:
    """The open holds' credits of the lots ``from_lots`` (the plan side: the plan lot and
    earlier carry-overs) moved, whole, to the lot ``to_lot`` (an upgrade's carry-over),
    written back with their status unchanged."""
    moving = set(from_lots)
    writes = []
    for hold in holds.values():
        if not hold.is_open:
            continue
        draws = hold_draws(hold)
        if not any(d.lot_id in moving for d in draws):
            continue
        merged: dict[str, int] = {}
        for d in draws:
            lot_id = to_lot if d.lot_id in moving else d.lot_id
            merged[lot_id] = merged.get(lot_id, 0) + d.amount
        moved = tuple(Draw(lot_id, amount) for lot_id, amount in merged.items())
        writes.append(HoldWrite(attrs.evolve(hold, draws=moved), hold.status))
    return tuple(writes)


def system_lot_id(source: LotSource, version: int) -> str:
    """The id of a lot tokenplans makes (a carry-over, a rollover, a grant without an id):
    its source and the version of the entry that made it. Ids given by callers have no
    ``:``, so they never collide."""
    return f"{source.value}:{version}"


def purchase_lot(
    account: Account,
    now: datetime,
    *,
    payment_id: str,
    credits: int,
    expires_at: datetime | None,
    priority: int = 0,
    pack_id: str | None = None,
    actor: str | None = None,
) -> Change:
    """A paid pack's ``purchased`` lot, as a confirmed payment makes it: its ``lot_id``
    is the payment's id, so a payment confirmed twice (verify and webhook racing) cannot
    make two; the caller commits it with the payment marked paid, in one commit. It
    first repays the plan lot's overage, like any new lot; no lot cap applies."""
    lot = Lot(
        lot_id=payment_id,
        source=LotSource.PURCHASED,
        amount=credits,
        priority=priority,
        effective_at=now,
        expires_at=expires_at,
        created_by=pack_id or payment_id,
    )
    if any(existing.lot_id == payment_id for existing in account.lots):
        return Change(account)  # already bought: nothing more
    until = "never expiring" if expires_at is None else f"until {expires_at.isoformat()}"
    return add_lot(
        account,
        lot,
        now,
        kind=EntryKind.LOT_PURCHASED,
        message=f"bought {credits} as lot {payment_id}, {until}",
        actor=actor,
    )


def refund_lot(
    account: Account, now: datetime, *, payment_id: str, actor: str | None = None
) -> Change:
    """A refunded pack: its lot is voided (its free remainder forfeited, what was used
    stays used); nothing when the lot is gone or already voided or expired."""
    found = next((lot for lot in account.lots if lot.lot_id == payment_id), None)
    if found is None or found.status is not LotStatus.ACTIVE:
        return Change(account)
    return forfeit(account, payment_id, now, voided=True, actor=actor)
