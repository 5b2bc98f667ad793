"""Razorpay payments: the Orders API client and signature verifiers, and an offline
stand-in with the same signatures for development and tests."""

from .gateway import DEFAULT_API_URL, RazorpayGateway
from .offline import OfflineGateway

__all__ = ["DEFAULT_API_URL", "OfflineGateway", "RazorpayGateway"]
