"""Helpers shared by the payment tests: Razorpay-shaped webhook bodies and ledger reads."""

from __future__ import annotations

import json
from typing import Any

from tokenplans import AccountStore, LedgerEntry, Payment


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
    return [e for e in reversed(store.history(subject, limit=200)) if e.payment_id is not None]
