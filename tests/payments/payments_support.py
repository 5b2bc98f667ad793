"""Helpers shared by the payment tests: Razorpay-shaped webhook bodies and ledger reads."""

from __future__ import annotations

import json
from typing import Any

from tokenplans import (
    AccountStore,
    LedgerEntry,
    Payment,
    PaymentGateway,
    PaymentOutcome,
    PaymentService,
    Principal,
    TokenService,
    WebhookOutcome,
)


class PaymentsUnderTest(PaymentService):
    """A PaymentService over the ports of ``tokens``, which it keeps at hand (``.tokens``)
    so a test can read and change the same accounts."""

    def __init__(self, tokens: TokenService, gateway: PaymentGateway, **options: Any) -> None:
        super().__init__(
            tokens.store, tokens.store, tokens.catalog, tokens.clock, gateway, **options
        )  # type: ignore[arg-type]
        self.tokens = tokens


def payment_service(
    tokens: TokenService, gateway: PaymentGateway, **options: Any
) -> PaymentsUnderTest:
    return PaymentsUnderTest(tokens, gateway, **options)


def verify(
    payments: PaymentService,
    principal: Principal,
    *,
    order_id: str,
    payment_id: str,
    signature: str,
) -> PaymentOutcome:
    """What Razorpay Checkout posts after a payment, confirmed through the service."""
    proof = {
        "razorpay_order_id": order_id,
        "razorpay_payment_id": payment_id,
        "razorpay_signature": signature,
    }
    return payments.confirm(principal, proof)


def handle_webhook(
    payments: PaymentService, *, body: bytes, signature: str | None, event_id: str | None
) -> WebhookOutcome:
    """A webhook delivery with Razorpay's two headers (each left out when ``None``)."""
    headers = {}
    if signature is not None:
        headers["X-Razorpay-Signature"] = signature
    if event_id is not None:
        headers["X-Razorpay-Event-Id"] = event_id
    return payments.handle_webhook(body=body, headers=headers)


def event_body(
    event: str,
    payment: Payment,
    gateway_payment_id: str,
    *,
    amount: int | None = None,
) -> bytes:
    """A webhook body shaped like Razorpay's (trimmed to the fields anyone reads)."""
    entity: dict[str, Any] = {
        "id": gateway_payment_id,
        "entity": "payment",
        "amount": payment.amount if amount is None else amount,
        "currency": payment.currency,
        "status": "failed" if event == "payment.failed" else "captured",
        "order_id": payment.order_id,
        "notes": {"subject": payment.subject, "plan": payment.plan_id},
    }
    payload: dict[str, Any] = {"payment": {"entity": entity}}
    if event == "order.paid":
        payload["order"] = {"entity": {"id": payment.order_id, "entity": "order", "status": "paid"}}
    document = {
        "entity": "event",
        "account_id": "acc_TestAccount01",
        "event": event,
        "contains": sorted(payload),
        "payload": payload,
        "created_at": 1767225600,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def payment_entries(store: AccountStore, subject: str) -> list[LedgerEntry]:
    """The subject's ledger entries that record a payment, oldest first."""
    return [
        e
        for e in reversed(store.history(subject, limit=200))
        if getattr(e.facts, "payment_id", None) is not None
    ]
