"""Payments: orders for paid plans, and applying each paid one exactly once.

A payment is created with an order at the gateway (``created``), then either confirmed
(``paid``: the plan is applied to the account in the same commit that records the
payment) or refused (``failed``). Confirmation can arrive from the browser, from the
provider's webhook, or from both at once; it applies the plan once because the payment
is fetched again on every attempt of the update loop: of two racing confirmations one
commits, the other loses the compare-and-write on the account version, re-reads, finds
the payment paid and returns without changing anything. What a confirmed payment does to
the account is :func:`tokenplans._rules.payments.apply_payment` for a plan, and a
``purchased`` lot for a pack (:func:`tokenplans._rules.payments.apply_pack`); a refund
event voids a pack's lot (:func:`tokenplans._rules.payments.decide_refund`).

The service holds one gateway per payment provider, by name. An order is made at one of
them and records its name (``Payment.provider``); a proof or a webhook is read by the
gateway of the provider it comes from, and only confirms that provider's payments.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import attrs

from tokenplans._ports import AccountStore, Clock, PaymentGateway, PaymentStore
from tokenplans._rules.events import payment_event
from tokenplans._rules.payments import (
    check_purchase,
    decide_confirmation,
    decide_refund,
    open_order_for,
)
from tokenplans._rules.permissions import check_can_read
from tokenplans._values.accounts import utc_text
from tokenplans._values.events import DEFAULT_THRESHOLDS
from tokenplans._values.limits import check_subject
from tokenplans._values.payments import (
    Checkout,
    EventKind,
    GatewayEvent,
    Payment,
    PaymentOutcome,
    PaymentStatus,
    WebhookOutcome,
    WebhookStatus,
)
from tokenplans._values.plans import Pack, Plan, PlanCatalog
from tokenplans._values.principal import Principal
from tokenplans.errors import (
    InvalidRequestError,
    PaymentError,
    PaymentNotFoundError,
    WriteConflictError,
)

from .loop import AccountUpdater

_MAX_FAILURE_ATTEMPTS = 20
#: What a provider's name may be: it is a URL segment and part of OpenAPI operation ids.
_PROVIDER_NAME = re.compile(r"[a-z][a-z0-9]{0,31}")
#: How many of a subject's newest payments are searched for its open orders.
_RECENT_PAYMENTS = 100


def new_payment_id() -> str:
    """Our payment id: ``tp_`` and 24 hex digits (27 characters).

    Not ``pay_``: that prefix is Razorpay's own payment ids', and the two must not be
    mistaken for each other in the ledger.
    """
    return "tp_" + secrets.token_hex(12)


class PaymentService:
    """Orders for paid plans and their confirmation, over an account store (whose commit
    applies a paid plan), a payment store, the catalog, a clock and the payment gateways.

    Give one ``gateway``, or several as ``gateways``, keyed by their names (in the order
    they are preferred). The first is the default provider (:attr:`default_provider`),
    used when a call names none.
    """

    def __init__(
        self,
        accounts: AccountStore,
        payments: PaymentStore,
        catalog: PlanCatalog,
        clock: Clock,
        gateway: PaymentGateway | None = None,
        *,
        gateways: Mapping[str, PaymentGateway] | None = None,
        new_id: Callable[[], str] = new_payment_id,
        max_attempts: int = 100,
        thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
    ) -> None:
        if (gateway is None) == (gateways is None):
            raise TypeError("give one gateway, or gateways by their names, not both")
        by_name = {gateway.name: gateway} if gateway is not None else dict(gateways or {})
        if not by_name:
            raise ValueError("a PaymentService needs at least one gateway")
        for name, each in by_name.items():
            if name != each.name:
                raise ValueError(f"gateway {each.name!r} is given under another name {name!r}")
            if not isinstance(name, str) or not _PROVIDER_NAME.fullmatch(name):
                raise ValueError(
                    f"provider name {name!r}: 1 to 32 lower-case ASCII letters and digits, "
                    "starting with a letter"
                )
        self.catalog = catalog
        #: The gateways by provider name, the default one first.
        self.gateways: Mapping[str, PaymentGateway] = MappingProxyType(by_name)
        self._payments = payments
        self._accounts = AccountUpdater(
            accounts, catalog, clock, max_attempts=max_attempts, thresholds=thresholds
        )
        self._new_id = new_id

    @property
    def default_provider(self) -> str:
        """The provider a call that names none goes to: the first gateway given."""
        return next(iter(self.gateways))

    @property
    def gateway(self) -> PaymentGateway:
        """The default provider's gateway."""
        return self.gateways[self.default_provider]

    def _gateway_for(self, provider: str | None = None) -> PaymentGateway:
        """The gateway of ``provider`` (``None``: the default one); a
        :class:`PaymentError` (reason ``unknown_provider``) for a provider not served."""
        if provider is None:
            return self.gateway
        gateway = self.gateways.get(provider)
        if gateway is None:
            raise PaymentError("unknown_provider", f"no payment provider {provider!r} is served")
        return gateway

    # -- orders --------------------------------------------------------------------

    def create_order(
        self,
        principal: Principal,
        plan_id: str | None = None,
        *,
        pack: str | None = None,
        subject: str | None = None,
        provider: str | None = None,
    ) -> Checkout:
        """Create an order for the plan ``plan_id`` or the pack ``pack`` (exactly one of
        them) at ``provider``'s gateway (default: the default provider's) and record it as
        ``created``.

        Only a paid plan ranking at or above the account's current one may be bought (the
        same plan is a renewal, so it needs a term to extend); any pack may be bought at
        any time. The amount and currency come from the catalog. An open (unpaid) order
        at the same provider for the same plan or pack and price is handed back instead
        (``reused=True``), and a subject may hold at most ``MAX_OPEN_ORDERS`` open orders,
        at all providers (:class:`TooManyOrdersError`); a paid order is closed, so a pack
        bought again is a new order. The gateway is called *before* anything is stored,
        with our payment id: if it fails no record exists, and if storing fails afterwards
        the gateway holds an order nobody was given, which no one can pay.
        """
        if (plan_id is None) == (pack is None):
            raise InvalidRequestError("an order names exactly one of plan and pack")
        gateway = self._gateway_for(provider)
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        if pack is not None:
            item: Plan | Pack = self.catalog.get_pack(pack)
        else:
            item = self.catalog.get(str(plan_id))
            check_purchase(item, self._accounts.account(subject), self.catalog)
        recent = self._payments.payments_of(check_subject(subject), limit=_RECENT_PAYMENTS)
        now = self._accounts.now()
        reusable = open_order_for(item, recent, now, provider=gateway.name)
        if reusable is not None:
            started = gateway.resume_checkout(order_id=reusable.order_id)
            return Checkout(reusable, dict(started.public), item.name, reused=True)
        payment_id = self._new_id()
        started = gateway.start_checkout(
            payment_id=payment_id,
            subject=subject,
            plan_id=item.id,
            amount=item.price,
            currency=item.currency,
        )
        payment = Payment(
            id=payment_id,
            subject=subject,
            plan_id="" if isinstance(item, Pack) else item.id,
            amount=item.price,
            currency=item.currency,
            order_id=started.order_id,
            status=PaymentStatus.CREATED,
            created_at=now,
            updated_at=now,
            provider=gateway.name,
            pack_id=item.id if isinstance(item, Pack) else None,
        )
        self._payments.add_payment(payment)
        return Checkout(payment=payment, public=dict(started.public), plan_name=item.name)

    def payments(self, principal: Principal, *, subject: str | None = None) -> Sequence[Payment]:
        """The subject's payments, newest first: a user's own, or any subject's for an
        admin."""
        subject = principal.subject if subject is None else subject
        check_can_read(principal, subject)
        return self._payments.payments_of(check_subject(subject))

    # -- confirmation --------------------------------------------------------------

    def confirm(
        self, principal: Principal, proof: Mapping[str, object], *, provider: str | None = None
    ) -> PaymentOutcome:
        """Confirm a payment from the fields the browser posted after paying (``proof``,
        checked by ``provider``'s gateway, default: the default provider's). Only the
        order's subject (or an admin) may, and only for an order made at that provider;
        to anyone else, or from another provider, the order does not exist. A proof that
        does not check out changes nothing. Confirming again returns the same payment
        with ``applied=False``."""
        gateway = self._gateway_for(provider)
        confirmation = gateway.read_confirmation(proof)
        payment = self._payments.find_payment(confirmation.order_id)
        if (
            payment is None
            or payment.provider != gateway.name
            or (payment.subject != principal.subject and not principal.is_admin)
        ):
            raise PaymentNotFoundError(confirmation.order_id)
        if not confirmation.authentic:
            raise PaymentError("bad_signature", "the payment signature does not match")
        actor = (
            f"{gateway.name}:verify" if principal.subject == payment.subject else principal.subject
        )
        return self._confirm(
            payment, gateway_payment_id=confirmation.provider_payment_id, actor=actor
        )

    def handle_webhook(
        self, *, body: bytes, headers: Mapping[str, str], provider: str | None = None
    ) -> WebhookOutcome:
        """Act on one webhook delivery from ``provider`` (default: the default provider):
        ``body`` is the raw request body, exactly as received (a signature covers its
        bytes, not its JSON meaning), ``headers`` the delivery's HTTP headers. An event
        about an order made at another provider is ignored.

        Deliveries are at least once and unordered, so: an event id already handled is a
        duplicate; a confirmation of a paid payment changes nothing; a failure never moves
        a paid payment back. A refund of a pack's payment voids its lot's remainder and
        marks the payment refunded, so a confirmation arriving later buys nothing; a
        refund of a plan's payment is ignored (an operator's matter). The event id is
        marked in the same transaction that applies the change. Raises
        :class:`PaymentError` for a delivery the gateway refuses (bad signature, not an
        event); nothing changes then.
        """
        if not isinstance(body, bytes | bytearray):
            raise TypeError("the webhook body must be the raw bytes received")
        gateway = self._gateway_for(provider)
        event = gateway.read_webhook(body=bytes(body), headers=headers)
        if event.kind is EventKind.OTHER:
            return WebhookOutcome(WebhookStatus.IGNORED, event.name)
        if event.event_id is not None and self._payments.event_seen(event.event_id):
            return WebhookOutcome(WebhookStatus.DUPLICATE, event.name, event.order_id)
        payment = self._payment_of(event)
        paid_as = event.provider_payment_id
        if payment is None or paid_as is None or not self._acts_on(payment, event, gateway.name):
            return WebhookOutcome(WebhookStatus.IGNORED, event.name, event.order_id)
        if event.kind is EventKind.FAILED:
            return self._fail(payment, event)
        if event.kind is EventKind.REFUNDED:
            return self._refund(payment, event, actor=f"{gateway.name}:webhook")
        outcome = self._confirm(
            payment,
            gateway_payment_id=paid_as,
            actor=f"{gateway.name}:webhook",
            event_id=event.event_id,
        )
        status = WebhookStatus.APPLIED if outcome.applied else WebhookStatus.ALREADY_APPLIED
        return WebhookOutcome(status, event.name, payment.order_id)

    def _payment_of(self, event: GatewayEvent) -> Payment | None:
        """The payment an event is about: by the provider's order id, or (a refund that
        names only the provider's payment) by the provider's payment id."""
        if event.order_id is not None:
            return self._payments.find_payment(event.order_id)
        if event.kind is EventKind.REFUNDED and event.provider_payment_id is not None:
            return self._payments.find_payment_by_gateway_id(event.provider_payment_id)
        return None

    def _acts_on(self, payment: Payment, event: GatewayEvent, provider: str) -> bool:
        """Whether ``event`` about ``payment`` is acted on; if not, it is accepted (so the
        provider stops retrying) and ignored."""
        if payment.provider != provider:
            # Not an order of ours (another integration on the same provider account), or
            # not one made at this provider.
            return False
        if event.amount is not None and event.amount != payment.amount:
            return False  # not this order's: the provider fixes an order's amount
        if event.kind is EventKind.CONFIRMED and not self._on_offer(payment):
            # A plan or pack that left the catalog since the order has nothing to apply,
            # and refusing would only make the provider redeliver for days: the payment
            # stays ``created`` (GET /api/payments lists it) for an operator.
            return False
        # A plan's refund is left to the operator (as before packs); a pack's voids its lot.
        return event.kind is not EventKind.REFUNDED or payment.is_pack

    def _on_offer(self, payment: Payment) -> bool:
        """Whether the plan or pack ``payment`` buys is still in the catalog."""
        if payment.pack_id is not None:
            return self.catalog.has_pack(payment.pack_id)
        return payment.plan_id in self.catalog

    def _refund(self, payment: Payment, event: GatewayEvent, *, actor: str) -> WebhookOutcome:
        """Void a refunded pack's lot and mark its payment refunded, once per event."""
        event_id = event.event_id

        def fetch() -> tuple[Payment, bool]:
            current = self._payments.find_payment(payment.order_id)
            if current is None:  # pragma: no cover - payments are never deleted
                raise PaymentNotFoundError(payment.order_id)
            return current, event_id is not None and self._payments.event_seen(event_id)

        status = self._accounts.update(
            payment.subject,
            lambda account, now, facts: decide_refund(
                account, now, payment=facts[0], event_seen=facts[1], actor=actor, event_id=event_id
            ),
            fetch,
        )
        return WebhookOutcome(status, event.name, payment.order_id)

    def _confirm(
        self,
        payment: Payment,
        *,
        gateway_payment_id: str,
        actor: str,
        event_id: str | None = None,
    ) -> PaymentOutcome:
        def fetch() -> tuple[Payment, bool]:
            # Again on every attempt: a racing confirmation may have committed since.
            current = self._payments.find_payment(payment.order_id)
            if current is None:  # pragma: no cover - payments are never deleted
                raise PaymentNotFoundError(payment.order_id)
            return current, event_id is not None and self._payments.event_seen(event_id)

        return self._accounts.update_holding(
            payment.subject,
            lambda account, holds, now, facts: decide_confirmation(
                account,
                now,
                payment=facts[0],
                event_seen=facts[1],
                gateway_payment_id=gateway_payment_id,
                actor=actor,
                event_id=event_id,
                catalog=self.catalog,
                holds=holds,
            ),
            lambda _holds: fetch(),
        )

    def _fail(self, payment: Payment, event: GatewayEvent) -> WebhookOutcome:
        """Mark the payment failed: a compare-and-write on its status alone, since the
        account does not change."""
        name, event_id = event.name, event.event_id
        for _ in range(_MAX_FAILURE_ATTEMPTS):
            current = self._payments.find_payment(payment.order_id)
            if current is None:  # pragma: no cover - payments are never deleted
                break
            if current.status in (PaymentStatus.PAID, PaymentStatus.REFUNDED):
                return WebhookOutcome(WebhookStatus.ALREADY_APPLIED, name, current.order_id)
            if current.status is PaymentStatus.FAILED and event_id is None:
                return WebhookOutcome(WebhookStatus.FAILED, name, current.order_id)
            failed = attrs.evolve(
                current,
                status=PaymentStatus.FAILED,
                gateway_payment_id=event.provider_payment_id,
                updated_at=self._accounts.now(),
            )
            try:
                # payment.failed goes out with the failure, in its transaction.
                cause = event_id if event_id is not None else utc_text(failed.updated_at)
                self._payments.update_payment(
                    failed,
                    expected_status=current.status,
                    event_id=event_id,
                    events=(payment_event(failed, cause=cause),),
                )
            except WriteConflictError:
                if event_id is not None and self._payments.event_seen(event_id):
                    return WebhookOutcome(WebhookStatus.DUPLICATE, name, current.order_id)
                continue  # the payment moved (paid, most likely): look again
            return WebhookOutcome(WebhookStatus.FAILED, name, current.order_id)
        return WebhookOutcome(WebhookStatus.IGNORED, name, payment.order_id)
