"""What Stripe sends us, read in the core's neutral terms: the signed webhook events
about Checkout Sessions; and their description (:data:`DESCRIPTION`), from which the HTTP
adapter parses and documents them without naming Stripe.

Stripe has no browser-side proof of a payment (Checkout redirects to the success URL
with nothing signed), so a Stripe payment is confirmed by its webhook only: the
description names no proof fields, and there is no verify route.

Both gateways (the real one and the offline stand-in) speak it through
:class:`StripeProtocol`, so the development flow exercises production's parsing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from tokenplans import InvalidRequestError, PaymentError
from tokenplans.ports import (
    MAX_GATEWAY_ID_LENGTH,
    Confirmation,
    EventKind,
    GatewayDescription,
    GatewayEvent,
)

from .signatures import TOLERANCE_SECONDS, verify

#: Stripe's API, unless a test or a proxy says otherwise.
DEFAULT_API_URL = "https://api.stripe.com"
#: The provider's name; the ledger's actor is ``stripe:webhook``.
NAME = "stripe"
#: The order answer's field: the Checkout page to send the browser to.
CHECKOUT_URL_FIELD = "checkout_url"
#: The webhook's signature header.
SIGNATURE_HEADER = "stripe-signature"
#: Stripe takes up to 200 characters as a session's ``client_reference_id``.
MAX_REFERENCE_LENGTH = 200
#: Events that confirm a payment: a completed session only when it is paid (a delayed
#: method completes unpaid, then succeeds or fails later).
COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
#: Events that mark a payment failed.
FAILING_EVENTS = frozenset({"checkout.session.async_payment_failed", "checkout.session.expired"})
#: A charge was refunded (in part or in full): a pack's lot is voided. The charge names
#: the PaymentIntent, which is the payment's provider id.
REFUNDED = "charge.refunded"

_SESSION_EXAMPLE = {
    "id": "cs_test_a1Q6kVbZ1xNw3Yt9Q6kVbZ1xNw3Yt9Q6kVbZ1xNw3Yt9Q6kVbZ1xNw3Yt9",
    "object": "checkout.session",
    "amount_total": 2900,
    "currency": "usd",
    "client_reference_id": "tp_0f0f0f0f0f0f0f0f0f0f0f0f",
    "metadata": {"payment_id": "tp_0f0f0f0f0f0f0f0f0f0f0f0f", "plan": "standard"},
    "mode": "payment",
    "payment_intent": "pi_3Q6kVcA2yOx4Zu0A1b2C3d4",
    "payment_status": "paid",
    "status": "complete",
}
#: A Stripe event (trimmed to the fields read), for a session that is not ours: ignored.
_COMPLETED_EXAMPLE = {
    "id": "evt_1Q6kVdB3zPy5Av1A1b2C3d4",
    "object": "event",
    "api_version": "2024-06-20",
    "created": 1767225600,
    "data": {"object": _SESSION_EXAMPLE},
    "livemode": False,
    "type": COMPLETED,
}
#: Stripe's wire shapes, as the HTTP adapter reads and documents them.
DESCRIPTION = GatewayDescription(
    title="Stripe",
    proof={},  # no browser-side proof: Stripe payments are confirmed by webhook only
    proof_example={},
    checkout={
        CHECKOUT_URL_FIELD: {
            "type": "string",
            "format": "uri",
            "description": "Stripe Checkout's page for this order: send the browser there.",
        }
    },
    webhook_headers=(
        {
            "name": "Stripe-Signature",
            "in": "header",
            "required": True,
            "description": (
                "`t=TIMESTAMP,v1=SIGNATURE[,v1=...]`: hex HMAC-SHA256 of "
                "`TIMESTAMP.RAW_BODY` with the endpoint's signing secret; at most 300 s old."
            ),
            "schema": {"type": "string"},
        },
    ),
    webhook_example=_COMPLETED_EXAMPLE,
    max_receipt_length=MAX_REFERENCE_LENGTH,
)


def check_reference(payment_id: str) -> str:
    """Our payment id, sent as the session's ``client_reference_id`` (200 characters)."""
    if not 1 <= len(payment_id) <= MAX_REFERENCE_LENGTH:
        raise ValueError(f"payment id {payment_id!r} does not fit a client_reference_id")
    return payment_id


class StripeProtocol:
    """Reads Stripe's webhooks with the given signing secrets (any may sign), refusing
    signatures older than ``tolerance`` seconds by the ``now`` clock (Unix seconds)."""

    def __init__(
        self,
        webhook_secrets: tuple[bytes, ...],
        *,
        tolerance: int = TOLERANCE_SECONDS,
        now: Callable[[], float] | None = None,
    ) -> None:
        self._webhook_secrets = webhook_secrets
        self._tolerance = tolerance
        self._now = now or time.time

    @property
    def name(self) -> str:
        return NAME

    @property
    def description(self) -> GatewayDescription:
        return DESCRIPTION

    def read_confirmation(self, proof: Mapping[str, object]) -> Confirmation:
        """Stripe hands the browser nothing signed: there is no proof to read."""
        del proof
        raise InvalidRequestError(
            "Stripe payments are confirmed by Stripe's webhook only: there is no proof to verify"
        )

    def verify_webhook(self, *, body: bytes, signature: str) -> bool:
        """Whether ``signature`` (a ``Stripe-Signature`` value) signs the raw ``body`` with
        any webhook secret, recently enough; never raises."""
        return verify(
            self._webhook_secrets, body, signature, now=self._now(), tolerance=self._tolerance
        )

    def read_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        """A signed delivery's event: refused unless ``Stripe-Signature`` signs the raw body
        recently; the event id is the body's ``id``."""
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature or not self.verify_webhook(body=body, signature=signature):
            raise PaymentError(
                "bad_signature", "the webhook signature does not match, or is too old"
            )
        return parse_event(body)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """The first value of header ``name``, whatever the case of the given names."""
    value = headers.get(name)
    if value is not None:
        return value
    return next((v for k, v in headers.items() if k.lower() == name), None)


def parse_event(body: bytes) -> GatewayEvent:
    """The event of a Stripe webhook body. Checkout Session events carry the session as
    ``data.object``: its id is the order id, its PaymentIntent the provider's payment id
    (the session's id when it has none, as an expired session may not)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PaymentError("malformed_event", "the webhook body is not JSON") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        raise PaymentError("malformed_event", "the webhook body names no event type")
    name: str = data["type"]
    event_id = _text(data.get("id"))
    inner = data.get("data")
    session = inner.get("object") if isinstance(inner, Mapping) else None
    session = session if isinstance(session, Mapping) else {}
    if name == REFUNDED and session.get("object") == "charge":
        return _refund(session, name, event_id)
    if session.get("object") != "checkout.session":
        return GatewayEvent(kind=EventKind.OTHER, name=name, event_id=event_id)
    if name == ASYNC_SUCCEEDED or (name == COMPLETED and session.get("payment_status") == "paid"):
        kind = EventKind.CONFIRMED
    elif name in FAILING_EVENTS:
        kind = EventKind.FAILED
    else:  # a completed session still unpaid (a delayed method), or anything else
        kind = EventKind.OTHER
    order_id = _text(session.get("id"))
    intent = session.get("payment_intent")
    if isinstance(intent, Mapping):  # expanded
        intent = intent.get("id")
    amount = session.get("amount_total")
    return GatewayEvent(
        kind=kind,
        name=name,
        event_id=event_id,
        order_id=order_id,
        provider_payment_id=_text(intent) or order_id,
        amount=None if isinstance(amount, bool) or not isinstance(amount, int) else amount,
    )


def _refund(charge: Mapping[str, Any], name: str, event_id: str | None) -> GatewayEvent:
    """A refunded charge: no session id (the order id), so the payment is found by its
    PaymentIntent; the amount is the charge's (what was paid), not the refund's."""
    intent = charge.get("payment_intent")
    if isinstance(intent, Mapping):  # expanded
        intent = intent.get("id")
    amount = charge.get("amount")
    return GatewayEvent(
        kind=EventKind.REFUNDED,
        name=name,
        event_id=event_id,
        provider_payment_id=_text(intent),
        amount=None if isinstance(amount, bool) or not isinstance(amount, int) else amount,
    )


def _text(value: object) -> str | None:
    if (
        isinstance(value, str)
        and 1 <= len(value) <= MAX_GATEWAY_ID_LENGTH
        and value.isascii()
        and value.isprintable()
    ):
        return value
    return None


def session_form(
    *,
    payment_id: str,
    subject: str,
    plan_id: str,
    amount: int,
    currency: str,
    success_url: str,
    cancel_url: str | None,
) -> dict[str, str]:
    """The form fields of ``POST /v1/checkout/sessions`` for one plan (Stripe's API takes
    form-encoded bodies, nested fields in brackets). Our payment id is the session's
    ``client_reference_id`` and in its metadata and its PaymentIntent's."""
    metadata = {"payment_id": check_reference(payment_id), "subject": subject, "plan": plan_id}
    form = {
        "mode": "payment",
        "client_reference_id": payment_id,
        "success_url": success_url,
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": currency.lower(),
        "line_items[0][price_data][unit_amount]": str(amount),
        "line_items[0][price_data][product_data][name]": plan_id,
    }
    if cancel_url:
        form["cancel_url"] = cancel_url
    for key, value in metadata.items():
        form[f"metadata[{key}]"] = value
        form[f"payment_intent_data[metadata][{key}]"] = value
    return form


def session_fields(body: Any) -> tuple[str, str | None, Mapping[str, Any]]:
    """A session answer's id and URL, and the answer itself, or :class:`ValueError`."""
    session_id = _text(body.get("id")) if isinstance(body, Mapping) else None
    if session_id is None:
        raise ValueError("no session id")
    url = body.get("url")
    return session_id, url if isinstance(url, str) and url else None, body
