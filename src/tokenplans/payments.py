"""Payments (README, "Payments"): orders for paid plans, and applying each paid one exactly once.

A payment is created with an order at the gateway (``created``), then either confirmed
(``paid``: the plan is applied to the account in the same commit that records the
payment) or refused (``failed``). Confirmation can arrive by the browser's verify call,
by the provider's webhook, or by both at once; it applies the plan once because the
payment is re-read inside :meth:`TokenService.update`'s decide step on every attempt:
of two racing confirmations one commits, the other loses the compare-and-write on the
account version, re-reads, finds the payment paid and returns without changing anything.

What a confirmed payment does to the account, decided against the account *as it is when
the payment is confirmed* (not when the order was made):

- the paid plan ranks above the current one: an upgrade with carry-over;
- it is the current plan: a paid renewal;
- it ranks below the current one (an admin moved the account up while the customer was
  paying): the account is not downgraded; the paid plan's tokens are credited to the
  current period instead (a ``granted`` entry carrying the payment id), so the customer
  keeps the better plan and still receives what was paid for. A refund, if wanted, is an
  operator's decision, made with the payment id from the ledger.
"""

from __future__ import annotations

import enum
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from tokenplans.accounts import Account, Usage, as_utc
from tokenplans.errors import (
    InvalidRequestError,
    PaymentError,
    PaymentNotFoundError,
    TooManyOrdersError,
    WriteConflictError,
)
from tokenplans.ledger import Change
from tokenplans.permissions import Principal, check_can_read, subject_by_keyword
from tokenplans.plans import Plan, PlanCatalog
from tokenplans.rules import change_plan, check_subject, grant, renew

if TYPE_CHECKING:  # ports and service import this module's records: only types flow back
    from tokenplans.ports import PaymentGateway
    from tokenplans.service import Decision, TokenService

#: Razorpay limits an order's receipt to 40 characters; our payment ids are its receipt.
MAX_RECEIPT_LENGTH = 40
#: Provider ids (orders, payments, webhook events) fit an indexed VARCHAR(100) everywhere.
MAX_GATEWAY_ID_LENGTH = 100
#: Webhook events that confirm a payment, and the one that marks it failed.
CONFIRMING_EVENTS = frozenset({"payment.captured", "order.paid"})
FAILING_EVENT = "payment.failed"
#: Who confirmed a payment, as the ledger entry's actor.
VERIFY_ACTOR = "razorpay:verify"
WEBHOOK_ACTOR = "razorpay:webhook"

#: An unpaid order stays open this long: asked for the same plan again meanwhile, the
#: subject is given the same order back instead of a new one at the gateway.
ORDER_REUSE_WINDOW = timedelta(hours=1)
#: At most this many open orders per subject (for different plans, or made by racing
#: requests); beyond, :class:`TooManyOrdersError` until the oldest one leaves the window.
MAX_OPEN_ORDERS = 5

_MAX_FAILURE_ATTEMPTS = 20
_SECOND = timedelta(seconds=1)
#: How many of a subject's newest payments are searched for its open orders.
_RECENT_PAYMENTS = 100


class PaymentStatus(enum.StrEnum):
    """Stored as the value. A payment only moves forward: created -> paid | failed,
    and failed -> paid (a retried checkout that succeeded); never away from paid."""

    CREATED = "created"
    PAID = "paid"
    FAILED = "failed"


@attrs.frozen
class Payment:
    """One order for one plan, for one subject.

    ``id`` is ours (sent to the gateway as the order's receipt, at most 40 characters);
    ``order_id`` is the gateway's; ``gateway_payment_id`` arrives when the payment does.
    Amount and currency are copied from the catalog when the order is made.
    """

    id: str
    subject: str
    plan_id: str
    amount: int
    currency: str
    order_id: str
    status: PaymentStatus
    created_at: datetime
    updated_at: datetime
    gateway_payment_id: str | None = None


@attrs.frozen
class Checkout:
    """A created order and what a browser checkout (Razorpay Checkout) needs to take it:
    the gateway's order id, the amount in minor units, the currency and the public key id.
    """

    payment: Payment
    key_id: str
    plan_name: str
    #: True when an open order for the same plan was handed back instead of a new one.
    reused: bool = False

    @property
    def order_id(self) -> str:
        return self.payment.order_id

    @property
    def amount(self) -> int:
        return self.payment.amount

    @property
    def currency(self) -> str:
        return self.payment.currency


@attrs.frozen
class PaymentOutcome:
    """A confirmed payment and the account's usage after it.

    ``applied`` is true only for the call that applied the plan; a repeated verify, or a
    verify that lost the race with the webhook, gets the same payment with
    ``applied=False`` and changes nothing.
    """

    payment: Payment
    usage: Usage
    applied: bool
    message: str


class WebhookStatus(enum.StrEnum):
    """What a webhook delivery did. Every one of these is a success for the provider (it
    must stop retrying); only a bad signature or a malformed body is refused."""

    APPLIED = "applied"  # a payment was confirmed and its plan applied by this delivery
    ALREADY_APPLIED = "already_applied"  # the payment was paid before (verify or replay)
    FAILED = "failed"  # the payment is now marked failed
    DUPLICATE = "duplicate"  # this event id was handled before
    IGNORED = "ignored"  # an event we do not act on, or an order that is not ours


@attrs.frozen
class WebhookOutcome:
    status: WebhookStatus
    event: str
    order_id: str | None = None


def new_payment_id() -> str:
    """Our payment id: ``tp_`` and 24 hex digits (27 characters, inside the receipt's 40).

    Not ``pay_``: that prefix is Razorpay's own payment ids', and the two must not be
    mistaken for each other in the ledger.
    """
    return "tp_" + secrets.token_hex(12)


class PaymentService:
    """Orders for paid plans and their confirmation, over a :class:`TokenService` (for
    the store, catalog, clock and the optimistic update loop) and a payment gateway."""

    def __init__(
        self,
        tokens: TokenService,
        gateway: PaymentGateway,
        *,
        new_id: Callable[[], str] = new_payment_id,
    ) -> None:
        self.tokens = tokens
        self.gateway = gateway
        self._new_id = new_id

    # -- orders --------------------------------------------------------------------

    def create_order(
        self, principal: Principal, plan_id: str, *, subject: str | None = None
    ) -> Checkout:
        """Create an order for ``plan_id`` at the gateway and record it as ``created``.

        Only a paid plan ranking at or above the account's current one may be bought (the
        same plan is a renewal, so it needs a term to extend). The amount and currency
        come from the catalog. An open order (not paid, younger than
        :data:`ORDER_REUSE_WINDOW`) for the same plan and price is handed back instead
        (``reused=True``), and a subject may hold at most :data:`MAX_OPEN_ORDERS` open
        orders (:class:`TooManyOrdersError`), so no client can make the gateway create
        orders without end. The gateway is called *before* anything is stored, with our
        payment id as the receipt: if it fails no record exists, and if storing fails
        afterwards the gateway holds an order nobody was given, which no one can pay.
        """
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        catalog = self.tokens.catalog
        plan = catalog.get(plan_id)
        if plan.is_free:
            raise PaymentError("free_plan", f"{plan.id} is free: no payment is needed")
        account = self.tokens.account(subject)
        current = catalog.get(account.plan_id) if account.plan_id in catalog else None
        if current is not None and plan.rank < current.rank:
            raise PaymentError("lower_plan", f"{plan.id} ranks below the current plan {current.id}")
        if current == plan and not plan.has_term:
            raise PaymentError("no_term", f"{plan.id} has no term to renew")
        now = as_utc(self.tokens.clock.now())
        still_open = self._open_orders(subject, now)
        for payment in still_open:
            if (payment.plan_id, payment.amount, payment.currency) == (
                plan.id,
                plan.price,
                plan.currency,
            ):
                return Checkout(payment, self.gateway.key_id, plan.name, reused=True)
        if len(still_open) >= MAX_OPEN_ORDERS:
            frees_at = min(p.created_at for p in still_open) + ORDER_REUSE_WINDOW
            raise TooManyOrdersError(MAX_OPEN_ORDERS, max(1, -(-(frees_at - now) // _SECOND)))
        payment_id = self._new_id()
        if not 1 <= len(payment_id) <= MAX_RECEIPT_LENGTH:
            raise ValueError(f"payment id {payment_id!r} does not fit a 40-character receipt")
        order_id = self.gateway.create_order(
            amount=plan.price,
            currency=plan.currency,
            receipt=payment_id,
            notes={"subject": subject, "plan": plan.id, "payment_id": payment_id},
        )
        payment = Payment(
            id=payment_id,
            subject=subject,
            plan_id=plan.id,
            amount=plan.price,
            currency=plan.currency,
            order_id=order_id,
            status=PaymentStatus.CREATED,
            created_at=now,
            updated_at=now,
        )
        self.tokens.store.add_payment(payment)
        return Checkout(payment=payment, key_id=self.gateway.key_id, plan_name=plan.name)

    def _open_orders(self, subject: str, now: datetime) -> list[Payment]:
        """The subject's orders that may still be paid and are younger than the window
        (a failed payment leaves its order open: the gateway takes another attempt)."""
        return [
            payment
            for payment in self.tokens.store.payments_of(
                check_subject(subject), limit=_RECENT_PAYMENTS
            )
            if payment.status is not PaymentStatus.PAID
            and now - payment.created_at < ORDER_REUSE_WINDOW
        ]

    @subject_by_keyword("payments(principal, subject=...)")
    def payments(self, principal: Principal, *, subject: str | None = None) -> Sequence[Payment]:
        """The subject's payments, newest first: a user's own, or any subject's for an
        admin."""
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        return self.tokens.store.payments_of(check_subject(subject))

    # -- confirmation --------------------------------------------------------------

    def verify(
        self, principal: Principal, *, order_id: str, payment_id: str, signature: str
    ) -> PaymentOutcome:
        """Confirm a payment from the checkout's callback: the gateway's signature of
        ``order_id|payment_id`` proves it. Only the order's subject (or an admin) may; to
        anyone else the order does not exist. A bad signature changes nothing. Verifying
        again returns the same payment with ``applied=False``."""
        order_id = _gateway_id("razorpay_order_id", order_id)
        payment_id = _gateway_id("razorpay_payment_id", payment_id)
        payment = self.tokens.store.find_payment(order_id)
        if payment is None or (payment.subject != principal.subject and not principal.is_admin):
            raise PaymentNotFoundError(order_id)
        if not isinstance(signature, str) or not self.gateway.verify_payment(
            order_id=order_id, payment_id=payment_id, signature=signature
        ):
            raise PaymentError("bad_signature", "the payment signature does not match")
        actor = VERIFY_ACTOR if principal.subject == payment.subject else principal.subject
        return self._confirm(payment, gateway_payment_id=payment_id, actor=actor)

    def handle_webhook(
        self, *, body: bytes, signature: str | None, event_id: str | None
    ) -> WebhookOutcome:
        """Act on one webhook delivery: ``body`` is the raw request body, exactly as
        received (the signature covers its bytes, not its JSON meaning).

        Deliveries are at least once and unordered, so: an event id already handled is a
        duplicate; a confirmation of a paid payment changes nothing; a failure never moves
        a paid payment back. The event id is marked in the same transaction that applies
        the change. Raises :class:`PaymentError` for a bad or missing signature and for a
        signed body that is not a Razorpay event; nothing changes then.
        """
        if not isinstance(body, bytes | bytearray):
            raise TypeError("the webhook body must be the raw bytes received")
        body = bytes(body)
        if not signature or not self.gateway.verify_webhook(body=body, signature=signature):
            raise PaymentError("bad_signature", "the webhook signature does not match")
        if event_id is not None:
            event_id = _gateway_id("x-razorpay-event-id", event_id)
        event, order_id, gateway_payment_id, amount = _parse_event(body)
        if event not in CONFIRMING_EVENTS and event != FAILING_EVENT:
            return WebhookOutcome(WebhookStatus.IGNORED, event)
        store = self.tokens.store
        if event_id is not None and store.event_seen(event_id):
            return WebhookOutcome(WebhookStatus.DUPLICATE, event, order_id)
        payment = None if order_id is None else store.find_payment(order_id)
        if payment is None or gateway_payment_id is None:
            # Not an order of ours (another integration on the same provider account):
            # accepted, so the provider stops retrying, and ignored.
            return WebhookOutcome(WebhookStatus.IGNORED, event, order_id)
        if (amount is not None and amount != payment.amount) or (
            event != FAILING_EVENT and payment.plan_id not in self.tokens.catalog
        ):
            # A different amount is not this order's (the provider fixes an order's
            # amount). A plan that left the catalog since the order has nothing to apply,
            # and refusing would only make the provider redeliver for days: the payment
            # stays ``created`` (GET /api/payments lists it) for an operator to settle.
            return WebhookOutcome(WebhookStatus.IGNORED, event, order_id)
        if event == FAILING_EVENT:
            return self._fail(payment, gateway_payment_id, event, event_id)
        outcome = self._confirm(
            payment, gateway_payment_id=gateway_payment_id, actor=WEBHOOK_ACTOR, event_id=event_id
        )
        status = WebhookStatus.APPLIED if outcome.applied else WebhookStatus.ALREADY_APPLIED
        return WebhookOutcome(status, event, payment.order_id)

    def _confirm(
        self,
        payment: Payment,
        *,
        gateway_payment_id: str,
        actor: str,
        event_id: str | None = None,
    ) -> PaymentOutcome:
        # Imported here, not at the top: the service module imports this one's records.
        from tokenplans.service import Decision  # noqa: PLC0415

        store = self.tokens.store
        catalog = self.tokens.catalog

        def decide(account: Account, now: datetime) -> Decision[PaymentOutcome]:
            # Re-read on every attempt: a racing confirmation may have committed since.
            current = store.find_payment(payment.order_id)
            if current is None:  # pragma: no cover - payments are never deleted
                raise PaymentNotFoundError(payment.order_id)
            if current.status is PaymentStatus.PAID or (
                event_id is not None and store.event_seen(event_id)
            ):
                return Decision(
                    None,
                    PaymentOutcome(current, Usage.of(account), False, "payment already applied"),
                )
            paid = attrs.evolve(
                current,
                status=PaymentStatus.PAID,
                gateway_payment_id=gateway_payment_id,
                updated_at=now,
            )
            change = _apply(
                account, catalog.get(current.plan_id), catalog, now, payment_id=paid.id, actor=actor
            )
            message = change.entries[-1].message
            outcome = PaymentOutcome(paid, Usage.of(change.account), True, message)
            return Decision(change, outcome, payment=paid, event_id=event_id)

        return self.tokens.update(payment.subject, decide)

    def _fail(
        self, payment: Payment, gateway_payment_id: str, event: str, event_id: str | None
    ) -> WebhookOutcome:
        store = self.tokens.store
        for _ in range(_MAX_FAILURE_ATTEMPTS):
            current = store.find_payment(payment.order_id)
            if current is None:  # pragma: no cover - payments are never deleted
                break
            if current.status is PaymentStatus.PAID:
                return WebhookOutcome(WebhookStatus.ALREADY_APPLIED, event, current.order_id)
            if current.status is PaymentStatus.FAILED and event_id is None:
                return WebhookOutcome(WebhookStatus.FAILED, event, current.order_id)
            failed = attrs.evolve(
                current,
                status=PaymentStatus.FAILED,
                gateway_payment_id=gateway_payment_id,
                updated_at=self.tokens.clock.now(),
            )
            try:
                store.update_payment(failed, expected_status=current.status, event_id=event_id)
            except WriteConflictError:
                if event_id is not None and store.event_seen(event_id):
                    return WebhookOutcome(WebhookStatus.DUPLICATE, event, current.order_id)
                continue  # the payment moved (paid, most likely): look again
            return WebhookOutcome(WebhookStatus.FAILED, event, current.order_id)
        return WebhookOutcome(WebhookStatus.IGNORED, event, payment.order_id)


def _apply(
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
        payment_id=payment_id,
        message=f"paid for {plan.id} while on {account.plan_id}: {plan.tokens} tokens credited",
    )
    return Change(credited.account, (entry,))


def _gateway_id(name: str, value: object) -> str:
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_GATEWAY_ID_LENGTH
        or not value.isascii()
        or not value.isprintable()
    ):
        raise InvalidRequestError(
            f"{name} must be 1 to {MAX_GATEWAY_ID_LENGTH} printable ASCII characters"
        )
    return value


def _parse_event(body: bytes) -> tuple[str, str | None, str | None, int | None]:
    """``(event, order id, payment id, amount)`` from a Razorpay webhook body.

    ``payment.*`` events carry ``payload.payment.entity`` (with its ``order_id``);
    ``order.paid`` carries ``payload.order.entity`` and ``payload.payment.entity``.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PaymentError("malformed_event", "the webhook body is not JSON") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("event"), str):
        raise PaymentError("malformed_event", "the webhook body names no event")
    event: str = data["event"]
    payload = data.get("payload")
    payload = payload if isinstance(payload, Mapping) else {}
    payment = _entity(payload, "payment")
    order = _entity(payload, "order")
    order_id = _text(order.get("id")) or _text(payment.get("order_id"))
    payment_id = _text(payment.get("id"))
    amount = payment.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int):
        amount = None
    return event, order_id, payment_id, amount


def _entity(payload: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    wrapper = payload.get(name)
    entity = wrapper.get("entity") if isinstance(wrapper, Mapping) else None
    return entity if isinstance(entity, Mapping) else {}


def _text(value: object) -> str | None:
    if isinstance(value, str) and 1 <= len(value) <= MAX_GATEWAY_ID_LENGTH and value.isascii():
        return value
    return None
