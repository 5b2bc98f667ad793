"""Razorpay's two signatures, checked by our own small verifiers.

Not the ``razorpay`` SDK's: it raises ``TypeError`` on a ``bytes`` body and on non-ASCII
header values, and accepts an empty secret (so a missing setting verifies anything signed
with the empty key). These take the raw bytes, refuse an empty secret when built, and
only ever answer ``True`` or ``False``.

- payment: hex HMAC-SHA256 of ``order_id + "|" + payment_id`` with the key secret;
- webhook: hex HMAC-SHA256 of the raw request body with the webhook secret.
"""

from __future__ import annotations

import hashlib
import hmac
import string

_HEX_DIGITS = frozenset(string.hexdigits)
_SIGNATURE_LENGTH = 2 * hashlib.sha256().digest_size  # 64 hex digits


def secret_bytes(name: str, secret: str | bytes) -> bytes:
    """``secret`` as bytes, or :class:`ValueError` if it is empty: an empty HMAC key is a
    key everyone knows, so it must stop the service at start-up rather than verify."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not isinstance(secret, bytes) or not secret:
        raise ValueError(f"{name} must be a non-empty secret")
    return secret


def sign(secret: bytes, message: bytes) -> str:
    """The hex HMAC-SHA256 of ``message`` with ``secret``, as Razorpay computes it."""
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signature_matches(secret: bytes, message: bytes, signature: object) -> bool:
    """Whether ``signature`` is the hex HMAC-SHA256 of ``message`` with ``secret``.

    Anything that is not 64 hex digits (empty, non-ASCII, bytes that are not ASCII...)
    is simply ``False``; the digests are compared in constant time, as bytes.
    """
    if isinstance(signature, bytes):
        try:
            signature = signature.decode("ascii")
        except UnicodeDecodeError:
            return False
    if (
        not isinstance(signature, str)
        or len(signature) != _SIGNATURE_LENGTH
        or not _HEX_DIGITS.issuperset(signature)
    ):
        return False
    expected = hmac.new(secret, message, hashlib.sha256).digest()
    return hmac.compare_digest(expected, bytes.fromhex(signature))


def payment_message(order_id: str, payment_id: str) -> bytes:
    """What Razorpay signs for a payment: ``order_id|payment_id`` as UTF-8."""
    return f"{order_id}|{payment_id}".encode()


def verify_payment_signature(
    secret: bytes, *, order_id: object, payment_id: object, signature: object
) -> bool:
    if not isinstance(order_id, str) or not isinstance(payment_id, str):
        return False
    return signature_matches(secret, payment_message(order_id, payment_id), signature)


def verify_webhook_signature(secrets: tuple[bytes, ...], body: object, signature: object) -> bool:
    """Whether any of ``secrets`` (current, then previous ones during a rotation) signed
    ``body``. Every secret is tried, so timing does not tell which one matched."""
    if not isinstance(body, bytes | bytearray):
        return False
    results = [signature_matches(secret, bytes(body), signature) for secret in secrets]
    return any(results)
