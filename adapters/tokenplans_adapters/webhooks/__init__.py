"""Outbound webhooks (docs/events.md): Standard Webhooks signatures, the check that a
target is a public http(s) URL, and the worker that delivers the outbox's events.

Built on the core's :class:`~tokenplans.ports.EventStore` port and ``httpx``; no other
adapter is imported.
"""

from .signing import new_secret, sign, signature_headers
from .targets import TargetRefused, check_target
from .worker import DEFAULT_RETRY_SCHEDULE, DeliverySettings, DeliveryWorker, Outcome

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "DeliverySettings",
    "DeliveryWorker",
    "Outcome",
    "TargetRefused",
    "check_target",
    "new_secret",
    "sign",
    "signature_headers",
]
