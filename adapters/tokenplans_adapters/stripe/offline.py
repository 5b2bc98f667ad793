"""A stand-in for Stripe when no Stripe key is configured (``tokenplans serve --dev``,
tests, demos).

It makes Checkout Session ids locally and signs Stripe-shaped events with the webhook
secret it checks them with, through the very verifier and parser the real gateway uses,
so the development flow exercises production's webhook code. Its ``checkout_url`` is on
the reserved ``.invalid`` domain: there is no page to pay on; ``tokenplans dev pay``
prints the signed event Stripe would send instead. Standard library only, no network.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable

from tokenplans.ports import CheckoutStart

from .protocol import (
    ASYNC_SUCCEEDED,
    CHECKOUT_URL_FIELD,
    COMPLETED,
    FAILING_EVENTS,
    SIGNATURE_HEADER,
    StripeProtocol,
    check_reference,
)
from .signatures import TOLERANCE_SECONDS, secret_bytes, signature_header

_ID_ALPHABET = string.ascii_letters + string.digits
#: Where an offline session "is": nowhere (``.invalid`` is reserved, RFC 6761).
OFFLINE_CHECKOUT = "https://checkout.stripe.invalid/offline/"
#: The webhook events :meth:`OfflineStripe.webhook_delivery` can forge.
WEBHOOK_EVENTS = (COMPLETED, ASYNC_SUCCEEDED, *sorted(FAILING_EVENTS))


def _random_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


class OfflineStripe(StripeProtocol):
    """Creates local Checkout Session ids and signs webhooks with ``webhook_secret``.

    Anyone holding the secret can "pay", so the composition root uses it only when asked
    (``TOKENPLANS_STRIPE_OFFLINE``, which development mode sets) and never beside a
    Stripe key.
    """

    def __init__(
        self,
        webhook_secret: str | bytes,
        *,
        tolerance: int = TOLERANCE_SECONDS,
        now: Callable[[], float] | None = None,
    ) -> None:
        self._secret = secret_bytes("the offline Stripe webhook secret", webhook_secret)
        super().__init__((self._secret,), tolerance=tolerance, now=now)

    def start_checkout(
        self, *, payment_id: str, subject: str, plan_id: str, amount: int, currency: str
    ) -> CheckoutStart:
        del subject, plan_id, amount, currency  # nothing to tell: the session exists locally
        check_reference(payment_id)
        session_id = _random_id("cs_test_", 58)
        return self.resume_checkout(order_id=session_id)

    def resume_checkout(self, *, order_id: str) -> CheckoutStart:
        return CheckoutStart(order_id, {CHECKOUT_URL_FIELD: OFFLINE_CHECKOUT + order_id})

    # -- what Stripe would do ---------------------------------------------------------

    def webhook_headers(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """The ``Stripe-Signature`` Stripe would deliver ``body`` with, signed now."""
        signed_at = int(self._now()) if timestamp is None else timestamp
        return {SIGNATURE_HEADER: signature_header((self._secret,), signed_at, body)}

    def webhook_delivery(
        self, event: str, *, session_id: str, amount: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """A signed delivery of ``event`` (one of :data:`WEBHOOK_EVENTS`) about the
        Checkout Session ``session_id``, as Stripe would send it (trimmed to the fields
        read), with a fresh event id: the body and its headers. Without ``amount`` the
        session's total is left out (the service then does not compare it)."""
        if event not in WEBHOOK_EVENTS:
            raise ValueError(f"unknown webhook event {event!r}: one of {WEBHOOK_EVENTS}")
        paid = event in (COMPLETED, ASYNC_SUCCEEDED)
        expired = event == "checkout.session.expired"
        session: dict[str, object] = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "payment_intent": None if expired else _random_id("pi_", 24),
            "payment_status": "paid" if paid else "unpaid",
            "status": "expired" if expired else "complete",
        }
        if amount is not None:
            session["amount_total"] = amount
        payload = {
            "id": _random_id("evt_", 24),
            "object": "event",
            "created": int(self._now()),
            "data": {"object": session},
            "livemode": False,
            "type": event,
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        return body, self.webhook_headers(body)

    @staticmethod
    def is_session_id(order_id: str) -> bool:
        """Whether ``order_id`` looks like a Checkout Session id (``cs_...``)."""
        return order_id.startswith("cs_")
