"""What a payment may buy, and what a confirmed payment does to an account.

A confirmed payment is decided against the account *as it is when the payment is
confirmed* (not when the order was made):

- the paid plan ranks above the current one: an upgrade with carry-over;
- it is the current plan: a paid renewal;
- it ranks below the current one (an admin moved the account up while the customer was
  paying): the account is not downgraded; the paid plan's tokens are credited to the
  current period instead (a ``granted`` entry carrying the payment id), so the customer
  keeps the better plan and still receives what was paid for. A refund, if wanted, is an
  operator's decision, made with the payment id from the ledger.

A confirmed pack payment makes a ``purchased`` lot whose id is the payment's id; the
payment's status is the guard that makes it once (a paid or refunded payment buys
nothing more), since the lot itself leaves the account once spent or expired. A refund
of a pack's payment voids its lot's free remainder (docs/credit-lots.md, "Packs").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import attrs

from tokenplans._values.accounts import Account, Usage
from tokenplans._values.holds import Hold, HoldKey
from tokenplans._values.ledger import Change, PaymentFacts
from tokenplans._values.limits import MAX_OPEN_ORDERS, ORDER_REUSE_WINDOW
from tokenplans._values.payments import (
    HandledEvent,
    Payment,
    PaymentOutcome,
    PaymentStatus,
    WebhookStatus,
)
from tokenplans._values.plans import Pack, Plan, PlanCatalog
from tokenplans._values.records import Record
from tokenplans.errors import PaymentError, TooManyOrdersError

from .decisions import Decision, holds_moved
from .lots import purchase_lot, refund_lot
from .quota import change_plan, grant, renew

_SECOND = timedelta(seconds=1)


def check_purchase(plan: Plan, account: Account, catalog: PlanCatalog) -> None:
    """Only a paid plan ranking at or above the account's current one may be bought (the
    same plan is a renewal, so it needs a term to extend)."""
    if plan.is_free:
        raise PaymentError("free_plan", f"{plan.id} is free: no payment is needed")
    current = catalog.get(account.plan_id) if account.plan_id in catalog else None
    if current is not None and plan.rank < current.rank:
        raise PaymentError("lower_plan", f"{plan.id} ranks below the current plan {current.id}")
    if current == plan and not plan.has_term:
        raise PaymentError("no_term", f"{plan.id} has no term to renew")


def open_order_for(
    item: Plan | Pack, recent: Iterable[Payment], now: datetime, *, provider: str
) -> Payment | None:
    """The subject's open order at ``provider`` (not paid, younger than
    :data:`ORDER_REUSE_WINDOW`) for ``item`` (a plan or a pack) at its current price, to
    hand back instead of a new one; ``None`` when a new order may be made. ``recent`` are
    the subject's newest payments. Raises :class:`TooManyOrdersError` when
    :data:`MAX_OPEN_ORDERS` are open already, at any provider, so no client can make the
    gateways create orders without end. (A failed payment leaves its order open: the
    gateway takes another attempt.) A paid order is closed, so a pack bought and paid is
    bought again with a new order (two packs, two lots); a refunded one is closed too."""
    still_open = [
        payment
        for payment in recent
        if payment.status not in (PaymentStatus.PAID, PaymentStatus.REFUNDED)
        and now - payment.created_at < ORDER_REUSE_WINDOW
    ]
    wanted = (
        (provider, "", item.id, item.price, item.currency)
        if isinstance(item, Pack)
        else (provider, item.id, None, item.price, item.currency)
    )
    for payment in still_open:
        if (
            payment.provider,
            payment.plan_id,
            payment.pack_id,
            payment.amount,
            payment.currency,
        ) == wanted:
            return payment
    if len(still_open) >= MAX_OPEN_ORDERS:
        frees_at = min(payment.created_at for payment in still_open) + ORDER_REUSE_WINDOW
        raise TooManyOrdersError(MAX_OPEN_ORDERS, max(1, -(-(frees_at - now) // _SECOND)))
    return None


def apply_payment(
    account: Account,
    plan: Plan,
    catalog: PlanCatalog,
    now: datetime,
    *,
    payment_id: str,
    actor: str,
) -> Change:
    """The change a confirmed payment for ``plan`` makes to ``account`` (module docstring)."""
    current = catalog.get(account.plan_id) if account.plan_id in catalog else None
    if current is None or plan.rank > current.rank:
        return change_plan(account, plan, catalog, now, actor=actor, payment_id=payment_id)
    if plan == current and plan.has_term:
        return renew(account, plan, now, payment_id=payment_id, actor=actor)
    credited = grant(account, plan.tokens, now, actor=actor)
    entry = attrs.evolve(
        credited.entries[-1],
        facts=PaymentFacts(payment_id),
        message=f"paid for {plan.id} while on {account.plan_id}: {plan.tokens} tokens credited",
    )
    return Change(credited.account, (entry,))


def apply_pack(
    account: Account, pack: Pack, now: datetime, *, payment_id: str, actor: str
) -> Change:
    """The ``purchased`` lot a confirmed payment for ``pack`` makes: ``pack.credits``,
    expiring ``expires_after_days`` after ``now`` (never without), its id the payment's."""
    expires_at = (
        None if pack.expires_after_days is None else now + timedelta(days=pack.expires_after_days)
    )
    return purchase_lot(
        account,
        now,
        payment_id=payment_id,
        credits=pack.credits,
        expires_at=expires_at,
        priority=pack.priority,
        pack_id=pack.id,
        actor=actor,
    )


def decide_refund(
    account: Account,
    now: datetime,
    *,
    payment: Payment,
    event_seen: bool,
    actor: str,
    event_id: str | None,
) -> Decision[WebhookStatus]:
    """A provider's refund of a pack's ``payment`` (as just read): the payment becomes
    ``refunded`` and its lot's free remainder is voided (what was used stays used); if
    the payment was not confirmed yet, it never will be. Nothing changes when the event
    was handled already (``event_seen``) or the payment is refunded already."""
    if event_seen:
        return Decision(None, WebhookStatus.DUPLICATE)
    if payment.status is PaymentStatus.REFUNDED:
        return Decision(None, WebhookStatus.ALREADY_APPLIED)
    refunded = attrs.evolve(payment, status=PaymentStatus.REFUNDED, updated_at=now)
    change = refund_lot(account, now, payment_id=payment.id, actor=actor)
    records: tuple[Record, ...] = (
        (refunded,) if event_id is None else (refunded, HandledEvent(event_id))
    )
    return Decision(change, WebhookStatus.REFUNDED, records)


def decide_confirmation(
    account: Account,
    now: datetime,
    *,
    payment: Payment,
    event_seen: bool,
    gateway_payment_id: str,
    actor: str,
    event_id: str | None,
    catalog: PlanCatalog,
    holds: Mapping[HoldKey, Hold] | None = None,
) -> Decision[PaymentOutcome]:
    """Mark ``payment`` (as just read) paid and apply it, or change nothing when it is paid
    already, refunded, or its event (``event_seen``) was handled by a racing delivery."""
    if payment.status is PaymentStatus.REFUNDED:
        return Decision(None, PaymentOutcome(payment, Usage.of(account), False, "payment refunded"))
    if payment.status is PaymentStatus.PAID or event_seen:
        return Decision(
            None, PaymentOutcome(payment, Usage.of(account), False, "payment already applied")
        )
    paid = attrs.evolve(
        payment, status=PaymentStatus.PAID, gateway_payment_id=gateway_payment_id, updated_at=now
    )
    if payment.pack_id is not None:
        change = apply_pack(
            account, catalog.get_pack(payment.pack_id), now, payment_id=paid.id, actor=actor
        )
    else:
        change = apply_payment(
            account, catalog.get(payment.plan_id), catalog, now, payment_id=paid.id, actor=actor
        )
    outcome = PaymentOutcome(paid, Usage.of(change.account), True, change.entries[-1].message)
    records: tuple[Record, ...] = (paid,) if event_id is None else (paid, HandledEvent(event_id))
    records += holds_moved(account, change, holds or {})
    return Decision(change, outcome, records)
