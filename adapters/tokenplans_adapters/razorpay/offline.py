"""A stand-in for Razorpay when no keys are configured (development, tests, demos).

It lives beside the real gateway, not in the core's ``tokenplans.testing``, because it
imitates Razorpay specifically: the same order-id shape and the same two signatures,
checked by the very verifiers the real gateway uses, so the development flow exercises
production's verification code. It needs only the standard library and no network.

``sign_payment`` does what Razorpay Checkout does after a successful payment: it signs
``order_id|payment_id``; :meth:`OfflineGateway.checkout_proof` and
:meth:`OfflineGateway.webhook_delivery` forge what Checkout and Razorpay's webhooks would
send, which ``tokenplans dev pay ORDER_ID`` prints to complete a payment.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Sequence

from tokenplans.ports import CheckoutStart

from .protocol import EVENT_ID_HEADER, SIGNATURE_HEADER, RazorpayProtocol, check_receipt
from .signatures import payment_message, secret_bytes, sign

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 14  # Razorpay's ids are a prefix and 14 alphanumerics: order_N2tK8v0GqXzB1c
#: The webhook events :meth:`OfflineGateway.webhook_delivery` can forge.
WEBHOOK_EVENTS = ("payment.captured", "order.paid", "payment.failed", "refund.processed")


def _random_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


class OfflineGateway(RazorpayProtocol):
    """Creates local order ids and signs payments and webhooks with one local secret.

    Anyone holding the secret can "pay", so the composition root uses it only when no
    Razorpay keys are configured, and derives the secret from one it already guards.
    Webhooks are checked with ``webhook_secrets`` as the real gateway checks them (none:
    every webhook is refused), or, when it is ``None``, with the payment secret.
    """

    def __init__(
        self,
        secret: str | bytes,
        *,
        key_id: str = "rzp_offline",
        webhook_secrets: Sequence[str | bytes] | None = None,
    ) -> None:
        self._secret = secret_bytes("the offline gateway secret", secret)
        if isinstance(webhook_secrets, str | bytes):
            raise TypeError("webhook_secrets is a sequence of secrets, not one secret")
        super().__init__(
            key_id,
            self._secret,
            (self._secret,)
            if webhook_secrets is None
            else tuple(secret_bytes("a webhook secret", each) for each in webhook_secrets),
        )

    def start_checkout(
        self, *, payment_id: str, subject: str, plan_id: str, amount: int, currency: str
    ) -> CheckoutStart:
        order_id = self.create_order(
            amount=amount, currency=currency, receipt=check_receipt(payment_id), notes={}
        )
        del subject, plan_id
        return self.resume_checkout(order_id=order_id)

    def create_order(
        self, *, amount: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> str:
        """A Razorpay-shaped order id, made locally."""
        del amount, currency, receipt, notes  # nothing to tell: the order exists locally
        return _random_id("order_")

    # -- what Razorpay would do ------------------------------------------------------

    def sign_payment(self, order_id: str, payment_id: str) -> str:
        """The signature Razorpay Checkout hands the browser for a captured payment."""
        return sign(self._secret, payment_message(order_id, payment_id))

    def sign_webhook(self, body: bytes) -> str:
        """The ``X-Razorpay-Signature`` Razorpay would send with ``body`` (signed with the
        current webhook secret). Raises :class:`ValueError` when webhooks are refused."""
        if not self._webhook_secrets:
            raise ValueError("this gateway has no webhook secret: it refuses every webhook")
        return sign(self._webhook_secrets[0], body)

    def webhook_headers(self, body: bytes, event_id: str | None = None) -> dict[str, str]:
        """The headers Razorpay would deliver ``body`` with: its signature and, if given,
        the event id."""
        headers = {SIGNATURE_HEADER: self.sign_webhook(body)}
        if event_id is not None:
            headers[EVENT_ID_HEADER] = event_id
        return headers

    def checkout_proof(self, order_id: str, payment_id: str) -> dict[str, str]:
        """What Checkout hands the browser after a captured payment: the body of
        ``POST /api/payments/verify``."""
        return {
            "razorpay_order_id": order_id,
            "razorpay_payment_id": payment_id,
            "razorpay_signature": self.sign_payment(order_id, payment_id),
        }

    def webhook_delivery(
        self, event: str, *, order_id: str, payment_id: str
    ) -> tuple[bytes, dict[str, str]]:
        """A signed delivery of ``event`` (one of :data:`WEBHOOK_EVENTS`) about a payment
        for ``order_id``, as Razorpay would send it: the body and its headers, with a
        fresh event id. Raises :class:`ValueError` when webhooks are refused."""
        if event not in WEBHOOK_EVENTS:
            raise ValueError(f"unknown webhook event {event!r}: one of {WEBHOOK_EVENTS}")
        status = {"payment.failed": "failed", "refund.processed": "refunded"}
        entities: dict[str, object] = {
            "payment": {
                "entity": {
                    "id": payment_id,
                    "entity": "payment",
                    "order_id": order_id,
                    "status": status.get(event, "captured"),
                }
            }
        }
        if event == "refund.processed":  # a refund carries the refund and its payment
            refund = {"id": _random_id("rfnd_"), "entity": "refund", "payment_id": payment_id}
            entities = {"refund": {"entity": {**refund, "status": "processed"}}, **entities}
        payload = {
            "entity": "event",
            "event": event,
            "contains": list(entities),
            "payload": entities,
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        return body, self.webhook_headers(body, f"evt_{secrets.token_hex(7)}")

    @staticmethod
    def new_payment_id() -> str:
        """A Razorpay-shaped payment id, ``pay_`` and 14 alphanumerics."""
        return _random_id("pay_")
