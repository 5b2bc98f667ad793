"""Outbound events (docs/events.md): what happened to an account, written to the outbox in
the same commit as the ledger entries that caused it, and the webhook endpoints and
deliveries that carry them out.

A new event type is a member of :class:`EventType` plus the line of the rule that emits
it (``tokenplans._rules.events``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from .accounts import utc_text


class EventType(enum.StrEnum):
    """Every event tokenplans emits, by its wire name."""

    THRESHOLD_CROSSED = "usage.threshold_crossed"
    PERIOD_RESET = "period.reset"
    PLAN_CHANGED = "plan.changed"
    TERM_EXPIRED = "term.expired"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    HOLD_EXPIRED = "hold.expired"
    LOT_GRANTED = "lot.granted"
    LOT_PURCHASED = "lot.purchased"
    LOT_EXPIRED = "lot.expired"
    LOT_VOIDED = "lot.voided"


#: The default thresholds of ``usage.threshold_crossed``, in percent of ``token_quota``.
DEFAULT_THRESHOLDS: tuple[int, ...] = (80, 100)


@attrs.frozen
class Event:
    """One event of one subject. ``id`` is derived from what caused it (so one cause is
    one id, whichever process wrote it); ``position`` is its place in the outbox feed,
    given by the store once the event is committed (``None`` before)."""

    id: str
    type: EventType
    created_at: datetime
    subject: str
    data: Mapping[str, Any]
    position: int | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON object a webhook delivers and the feed lists."""
        return {
            "id": self.id,
            "type": self.type.value,
            "created_at": utc_text(self.created_at),
            "subject": self.subject,
            "data": dict(self.data),
        }


@attrs.frozen
class EventPage:
    """Events in outbox order; pass ``next_after`` back as ``after`` for the next page."""

    events: tuple[Event, ...]
    next_after: int


class DeliveryStatus(enum.StrEnum):
    """A delivery is pending until a 2xx (delivered) or its last attempt (failed)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@attrs.frozen
class WebhookEndpoint:
    """Where events are sent. ``events`` lists the types it wants (``None``: all);
    ``secret`` is the ``whsec_`` signing secret. ``failing_since`` is the first failed
    attempt since its last success; an endpoint failing for too long is disabled."""

    id: str
    url: str
    secret: str
    created_at: datetime
    events: tuple[str, ...] | None = None
    description: str = ""
    enabled: bool = True
    disabled_at: datetime | None = None
    failing_since: datetime | None = None

    def wants(self, event_type: str) -> bool:
        return self.events is None or event_type in self.events


@attrs.frozen
class Delivery:
    """One event for one endpoint, and what its attempts have done so far."""

    endpoint_id: str
    event_id: str
    event_type: str
    subject: str
    position: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


@attrs.frozen
class Claim:
    """A delivery leased to one worker until ``leased_until``: the event, where it goes,
    and the ``token`` its outcome must present (a worker whose lease lapsed and was
    claimed again changes nothing)."""

    delivery: Delivery
    event: Event
    endpoint: WebhookEndpoint
    token: str
    leased_until: datetime


@attrs.frozen
class Attempt:
    """What one attempt of a claimed delivery did. ``retry_at`` is when to try again after
    a failure (``None``: give up, the delivery failed); ``disable_after`` how long an
    endpoint may fail without a success before it is disabled."""

    at: datetime
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    retry_at: datetime | None = None
    disable_after_seconds: float = 86400.0


@attrs.frozen
class Backlog:
    """The outbox's pending deliveries: how many, and the oldest event's age in seconds
    (0 with none)."""

    pending: int
    oldest_age_seconds: float
