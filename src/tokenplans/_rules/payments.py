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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import attrs

from tokenplans._values.accounts import Account, Usage
from tokenplans._values.holds import Hold, HoldKey
from tokenplans._values.ledger import Change, PaymentFacts
from tokenplans._values.limits import MAX_OPEN_ORDERS, ORDER_REUSE_WINDOW
from tokenplans._values.payments import HandledEvent, Payment, PaymentOutcome, PaymentStatus
from tokenplans._values.plans import Plan, PlanCatalog
from tokenplans._values.records import Record
from tokenplans.errors import PaymentError, TooManyOrdersError

from .decisions import Decision, holds_moved
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
    plan: Plan, recent: Iterable[Payment], now: datetime, *, provider: str
) -> Payment | None:
    """The subject's open order at ``provider`` (not paid, younger than
    :data:`ORDER_REUSE_WINDOW`) for ``plan`` at its current price, to hand back instead of
    a new one; ``None`` when a new order may be made. ``recent`` are the subject's newest
    payments. Raises :class:`TooManyOrdersError` when :data:`MAX_OPEN_ORDERS` are open
    already, at any provider, so no client can make the gateways create orders without
    end. (A failed payment leaves its order open: the gateway takes another attempt.)"""
    still_open = [
        payment
        for payment in recent
        if payment.status is not PaymentStatus.PAID
        and now - payment.created_at < ORDER_REUSE_WINDOW
    ]
    for payment in still_open:
        if (payment.provider, payment.plan_id, payment.amount, payment.currency) == (
            provider,
            plan.id,
            plan.price,
            plan.currency,
        ):
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
    already or its event (``event_seen``) was handled by a racing delivery."""
    if payment.status is PaymentStatus.PAID or event_seen:
        return Decision(
            None, PaymentOutcome(payment, Usage.of(account), False, "payment already applied")
        )
    paid = attrs.evolve(
        payment, status=PaymentStatus.PAID, gateway_payment_id=gateway_payment_id, updated_at=now
    )
    change = apply_payment(
        account, catalog.get(payment.plan_id), catalog, now, payment_id=paid.id, actor=actor
    )
    outcome = PaymentOutcome(paid, Usage.of(change.account), True, change.entries[-1].message)
    records: tuple[Record, ...] = (paid,) if event_id is None else (paid, HandledEvent(event_id))
    records += holds_moved(account, change, holds or {})
    return Decision(change, outcome, records)
