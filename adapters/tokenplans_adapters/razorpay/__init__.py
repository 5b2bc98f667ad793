"""Razorpay payments: the Orders API client, the Checkout and webhook protocol read in
the core's neutral terms, and an offline stand-in with the same signatures for
development and tests.

:class:`RazorpayGateway` is imported on first use: it brings httpx (and whatever httpx
finds installed), about 5 MiB that a server on the offline gateway never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .offline import WEBHOOK_EVENTS, OfflineGateway
from .protocol import DEFAULT_API_URL, EVENT_ID_HEADER, SIGNATURE_HEADER

if TYPE_CHECKING:
    from .gateway import RazorpayGateway

__all__ = [
    "DEFAULT_API_URL",
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "WEBHOOK_EVENTS",
    "OfflineGateway",
    "RazorpayGateway",
]


def __getattr__(name: str) -> object:
    if name == "RazorpayGateway":
        from .gateway import RazorpayGateway  # noqa: PLC0415 - on first use (above)

        return RazorpayGateway
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
