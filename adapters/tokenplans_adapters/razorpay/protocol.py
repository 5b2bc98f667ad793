"""What Razorpay sends us, read in the core's neutral terms: the Checkout callback's
fields, the webhook headers and events, and the limits Razorpay puts on an order; and
their description (:data:`DESCRIPTION`), from which the HTTP adapter parses and documents
them without naming Razorpay.

Both gateways (the real one and the offline stand-in) speak it through
:class:`RazorpayProtocol`, so the development flow exercises production's parsing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tokenplans import PaymentError
from tokenplans.ports import (
    MAX_GATEWAY_ID_LENGTH,
    CheckoutStart,
    Confirmation,
    EventKind,
    GatewayDescription,
    GatewayEvent,
    check_gateway_id,
)

from .signatures import verify_payment_signature, verify_webhook_signature

#: Razorpay's API, unless a test or a proxy says otherwise.
DEFAULT_API_URL = "https://api.razorpay.com/v1"
#: The provider's name; the ledger's actors are ``razorpay:verify`` and ``razorpay:webhook``.
NAME = "razorpay"
#: Razorpay limits an order's receipt to 40 characters; our payment ids are its receipt.
MAX_RECEIPT_LENGTH = 40
#: The fields Checkout hands the browser after a successful payment.
ORDER_ID_FIELD = "razorpay_order_id"
PAYMENT_ID_FIELD = "razorpay_payment_id"
SIGNATURE_FIELD = "razorpay_signature"
#: The webhook's signature over the raw body, and the id that dedupes redeliveries.
SIGNATURE_HEADER = "x-razorpay-signature"
EVENT_ID_HEADER = "x-razorpay-event-id"
#: Webhook events that confirm a payment, and the one that marks it failed.
CONFIRMING_EVENTS = frozenset({"payment.captured", "order.paid"})
FAILING_EVENT = "payment.failed"
#: A refund (in part or in full) went through: a pack's lot is voided.
REFUND_EVENT = "refund.processed"


_ID = {"type": "string", "minLength": 1, "maxLength": MAX_GATEWAY_ID_LENGTH}
#: A Razorpay event (trimmed to the fields read), for an order that is not ours: ignored.
_CAPTURED = {
    "entity": "event",
    "account_id": "acc_Q6kVZx0vMv2Xs8",
    "event": "payment.captured",
    "contains": ["payment"],
    "payload": {
        "payment": {
            "entity": {
                "id": "pay_Q6kVcA2yOx4Zu0",
                "entity": "payment",
                "amount": 2900,
                "currency": "INR",
                "status": "captured",
                "order_id": "order_Q6kVbZ1xNw3Yt9",
            }
        }
    },
    "created_at": 1767225600,
}
#: Razorpay's wire shapes, as the HTTP adapter reads and documents them.
DESCRIPTION = GatewayDescription(
    title="Razorpay",
    proof={
        ORDER_ID_FIELD: _ID,
        PAYMENT_ID_FIELD: _ID,
        SIGNATURE_FIELD: {
            "type": "string",
            "description": "Hex HMAC-SHA256 of `order_id|payment_id`.",
        },
    },
    proof_example={
        ORDER_ID_FIELD: "order_Q6kVbZ1xNw3Yt9",
        PAYMENT_ID_FIELD: "pay_Q6kVcA2yOx4Zu0",
        SIGNATURE_FIELD: "0f" * 32,
    },
    checkout={"key_id": {"type": "string", "description": "Checkout's `key`."}},
    webhook_headers=(
        {
            "name": "X-Razorpay-Signature",
            "in": "header",
            "required": True,
            "description": "Hex HMAC-SHA256 of the raw body with the webhook secret.",
            "schema": {"type": "string"},
        },
        {
            "name": "X-Razorpay-Event-Id",
            "in": "header",
            "required": False,
            "description": "Razorpay's event id; a redelivery carries the same one.",
            "schema": {"type": "string", "maxLength": MAX_GATEWAY_ID_LENGTH},
            "example": "evt_Q6kVdB3zPy5Av1",
        },
    ),
    webhook_example=_CAPTURED,
    max_receipt_length=MAX_RECEIPT_LENGTH,
)


def check_receipt(payment_id: str) -> str:
    """Our payment id, sent as the order's receipt: it must fit Razorpay's 40 characters."""
    if not 1 <= len(payment_id) <= MAX_RECEIPT_LENGTH:
        raise ValueError(f"payment id {payment_id!r} does not fit a 40-character receipt")
    return payment_id


def order_notes(*, payment_id: str, subject: str, plan_id: str) -> dict[str, str]:
    return {"subject": subject, "plan": plan_id, "payment_id": payment_id}


class RazorpayProtocol:
    """Reads Razorpay's Checkout proofs and webhooks with the given secrets: the key
    secret signs payments, the webhook secrets (current first) sign webhooks. ``key_id``
    is the public key id Checkout needs to pay an order."""

    def __init__(
        self, key_id: str, payment_secret: bytes, webhook_secrets: tuple[bytes, ...]
    ) -> None:
        self._key_id = key_id
        self._payment_secret = payment_secret
        self._webhook_secrets = webhook_secrets

    @property
    def name(self) -> str:
        return NAME

    @property
    def description(self) -> GatewayDescription:
        return DESCRIPTION

    @property
    def key_id(self) -> str:
        return self._key_id

    def resume_checkout(self, *, order_id: str) -> CheckoutStart:
        """What Checkout needs to pay an order: its id and our public key id."""
        return CheckoutStart(order_id, {"key_id": self._key_id})

    def read_confirmation(self, proof: Mapping[str, object]) -> Confirmation:
        """The ids Checkout posted, and whether their signature of ``order_id|payment_id``
        is Razorpay's."""
        order_id = check_gateway_id(ORDER_ID_FIELD, proof.get(ORDER_ID_FIELD))
        payment_id = check_gateway_id(PAYMENT_ID_FIELD, proof.get(PAYMENT_ID_FIELD))
        signature = proof.get(SIGNATURE_FIELD)
        authentic = isinstance(signature, str) and self.verify_payment(
            order_id=order_id, payment_id=payment_id, signature=signature
        )
        return Confirmation(order_id, payment_id, authentic)

    def verify_payment(self, *, order_id: str, payment_id: str, signature: str) -> bool:
        """Whether ``signature`` is Razorpay's for ``order_id|payment_id``; never raises."""
        return verify_payment_signature(
            self._payment_secret, order_id=order_id, payment_id=payment_id, signature=signature
        )

    def verify_webhook(self, *, body: bytes, signature: str) -> bool:
        """Whether ``signature`` is Razorpay's of the raw ``body``, with any webhook secret."""
        return verify_webhook_signature(self._webhook_secrets, body, signature)

    def read_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        """A signed delivery's event: refused unless ``X-Razorpay-Signature`` signs the raw
        body; ``X-Razorpay-Event-Id`` (optional) is the event id."""
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature or not self.verify_webhook(body=body, signature=signature):
            raise PaymentError("bad_signature", "the webhook signature does not match")
        event_id = _header(headers, EVENT_ID_HEADER) or None
        if event_id is not None:
            event_id = check_gateway_id(EVENT_ID_HEADER, event_id)
        return _parse_event(body, event_id)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """The first value of header ``name``, whatever the case of the given names."""
    value = headers.get(name)
    if value is not None:
        return value
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _parse_event(body: bytes, event_id: str | None) -> GatewayEvent:
    """The event of a Razorpay webhook body.

    ``payment.*`` events carry ``payload.payment.entity`` (with its ``order_id``);
    ``order.paid`` carries ``payload.order.entity`` and ``payload.payment.entity``;
    ``refund.processed`` carries ``payload.refund.entity`` and the refunded
    ``payload.payment.entity`` (its amount is the payment's, not the refund's).
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PaymentError("malformed_event", "the webhook body is not JSON") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("event"), str):
        raise PaymentError("malformed_event", "the webhook body names no event")
    name: str = data["event"]
    payload = data.get("payload")
    payload = payload if isinstance(payload, Mapping) else {}
    payment = _entity(payload, "payment")
    order = _entity(payload, "order")
    amount = payment.get("amount")
    if name in CONFIRMING_EVENTS:
        kind = EventKind.CONFIRMED
    elif name == FAILING_EVENT:
        kind = EventKind.FAILED
    elif name == REFUND_EVENT:
        kind = EventKind.REFUNDED
    else:
        kind = EventKind.OTHER
    return GatewayEvent(
        kind=kind,
        name=name,
        event_id=event_id,
        order_id=_text(order.get("id")) or _text(payment.get("order_id")),
        provider_payment_id=_text(payment.get("id"))
        or _text(_entity(payload, "refund").get("payment_id")),
        amount=None if isinstance(amount, bool) or not isinstance(amount, int) else amount,
    )


def _entity(payload: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    wrapper = payload.get(name)
    entity = wrapper.get("entity") if isinstance(wrapper, Mapping) else None
    return entity if isinstance(entity, Mapping) else {}


def _text(value: object) -> str | None:
    if isinstance(value, str) and 1 <= len(value) <= MAX_GATEWAY_ID_LENGTH and value.isascii():
        return value
    return None
