"""Stripe payments: Checkout Sessions over Stripe's REST API, its signed webhooks read in
the core's neutral terms, and an offline stand-in with the same signature for
development and tests.

:class:`StripeGateway` is imported on first use: it brings httpx, which a server on the
offline stand-in never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .offline import WEBHOOK_EVENTS, OfflineStripe
from .protocol import CHECKOUT_URL_FIELD, DEFAULT_API_URL, SIGNATURE_HEADER

if TYPE_CHECKING:
    from .gateway import StripeGateway

__all__ = [
    "CHECKOUT_URL_FIELD",
    "DEFAULT_API_URL",
    "SIGNATURE_HEADER",
    "WEBHOOK_EVENTS",
    "OfflineStripe",
    "StripeGateway",
]


def __getattr__(name: str) -> object:
    if name == "StripeGateway":
        from .gateway import StripeGateway  # noqa: PLC0415 - on first use (above)

        return StripeGateway
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
