"""Payment records (DESIGN.md §6): an order for a plan, created -> paid or failed."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs


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
