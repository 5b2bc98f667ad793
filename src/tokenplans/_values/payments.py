"""Payment records and the neutral words the payment gateway port speaks.

A payment moves created -> paid | failed (and failed -> paid, a retried checkout that
succeeded), never away from paid, except that a pack's payment moves to refunded when the
provider reports a refund (from any status: a refund may arrive before the
confirmation). The gateway types name no provider: a checkout started
for a payment, a confirmation of one, a webhook event, each in neutral terms, and what a
provider's browser checkout and webhooks look like on the wire
(:class:`GatewayDescription`), so that no adapter but the provider's own names its fields.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from .accounts import Usage


class PaymentStatus(enum.StrEnum):
    """Stored as the value. A payment only moves forward: created -> paid | failed,
    and failed -> paid (a retried checkout that succeeded); never away from paid. A
    pack's payment moves to refunded at a refund event, and never away from it: a
    refunded payment buys nothing, even if its confirmation arrives after the refund."""

    CREATED = "created"
    PAID = "paid"
    FAILED = "failed"
    REFUNDED = "refunded"


@attrs.frozen
class Payment:
    """One order for one plan or one pack, for one subject, at one payment provider.

    ``id`` is ours (sent to the gateway with the order); ``order_id`` is the gateway's;
    ``gateway_payment_id`` arrives when the payment does. Amount and currency are copied
    from the catalog when the order is made. ``provider`` is the name of the gateway that
    made the order (:attr:`PaymentGateway.name`): only that gateway's proofs and webhooks
    may confirm it. It defaults to ``"razorpay"``, the provider of every payment recorded
    before payments named theirs. A pack's payment names its pack (``pack_id``) and no
    plan (``plan_id`` is ``""``).
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
    provider: str = "razorpay"
    pack_id: str | None = None

    @property
    def is_pack(self) -> bool:
        """Whether the payment buys a pack (a ``purchased`` lot) rather than a plan."""
        return self.pack_id is not None


@attrs.frozen
class HandledEvent:
    """A payment-provider event id marked handled, so a redelivery changes nothing."""

    event_id: str


@attrs.frozen
class Checkout:
    """A created order and what a browser checkout needs to take it: the gateway's order
    id, the amount in minor units, the currency and the gateway's public fields (``public``,
    e.g. the key id). ``plan_name`` is the name of what is bought: the plan's, or the
    pack's."""

    payment: Payment
    public: Mapping[str, str]
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

    APPLIED = "applied"  # a payment was confirmed and its plan or pack applied by this delivery
    ALREADY_APPLIED = "already_applied"  # the payment was paid before (verify or replay)
    FAILED = "failed"  # the payment is now marked failed
    DUPLICATE = "duplicate"  # this event id was handled before
    IGNORED = "ignored"  # an event we do not act on, or an order that is not ours
    REFUNDED = "refunded"  # a pack's payment was refunded: its lot's remainder is voided


@attrs.frozen
class WebhookOutcome:
    status: WebhookStatus
    event: str
    order_id: str | None = None


# -- what the gateway port speaks ---------------------------------------------------------


@attrs.frozen
class CheckoutStart:
    """An order the provider made for a payment: its ``order_id`` and the ``public`` fields
    a browser checkout needs (nothing secret)."""

    order_id: str
    public: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Confirmation:
    """What a provider's proof from the browser says: the order, the provider's payment
    id, and whether the proof is genuine (``authentic``; a forged one confirms nothing)."""

    order_id: str
    provider_payment_id: str
    authentic: bool


class EventKind(enum.Enum):
    CONFIRMED = "confirmed"  # the payment was captured: apply it
    FAILED = "failed"  # the payment failed: mark it so
    REFUNDED = "refunded"  # the payment was refunded (in part or in full)
    OTHER = "other"  # anything else: acknowledged, not acted on


@attrs.frozen
class GatewayEvent:
    """A signed webhook delivery, in neutral terms. ``name`` is the provider's own event
    name (answered back to it); ids and amount are ``None`` when the event has none."""

    kind: EventKind
    name: str
    event_id: str | None = None
    order_id: str | None = None
    provider_payment_id: str | None = None
    amount: int | None = None


@attrs.frozen
class GatewayDescription:
    """What a provider's browser checkout and webhooks look like on the wire, in its own
    words, so that an HTTP adapter can parse their bodies and document them without
    naming any provider. Schemas are JSON Schema (as OpenAPI 3.1 uses it), as plain data.

    - ``title``: how people write the provider's name (``"Razorpay"``), one word;
    - ``proof``: the fields a browser posts after paying, to be handed to
      :meth:`PaymentGateway.read_confirmation`, each a required string, by name with its
      schema; empty when the provider confirms payments by webhook only (no verify);
    - ``proof_example``: a well-formed proof (of an order nobody has);
    - ``checkout``: the public fields :class:`CheckoutStart` carries (``public``), which an
      order answer adds for the browser's checkout, by name with their schemas;
    - ``webhook_headers``: the HTTP headers :meth:`PaymentGateway.read_webhook` reads, as
      OpenAPI header parameters (``name``, ``required``, ``description``, ``schema``);
    - ``webhook_example``: an event body, as the provider sends it (about no order of
      ours), which a test signs with the webhook secret and delivers;
    - ``max_receipt_length``: the longest of our payment ids the provider takes as the
      order's receipt (``None``: no limit).
    """

    title: str
    proof: Mapping[str, Mapping[str, Any]]
    proof_example: Mapping[str, object]
    checkout: Mapping[str, Mapping[str, Any]]
    webhook_headers: Sequence[Mapping[str, Any]]
    webhook_example: Mapping[str, object]
    max_receipt_length: int | None = None
