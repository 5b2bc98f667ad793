"""Razorpay payments: the Orders API client, the Checkout and webhook protocol read in
the core's neutral terms, and an offline stand-in with the same signatures for
development and tests."""

from .gateway import DEFAULT_API_URL, RazorpayGateway
from .offline import WEBHOOK_EVENTS, OfflineGateway
from .protocol import EVENT_ID_HEADER, SIGNATURE_HEADER

__all__ = [
    "DEFAULT_API_URL",
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "WEBHOOK_EVENTS",
    "OfflineGateway",
    "RazorpayGateway",
]
