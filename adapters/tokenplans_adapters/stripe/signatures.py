"""Stripe's webhook signature, checked by our own small verifier (no Stripe SDK).

Stripe signs each delivery in the ``Stripe-Signature`` header, ``t=TIMESTAMP,v1=SIG``:
``SIG`` is the hex HMAC-SHA256 of ``"{TIMESTAMP}.{raw body}"`` with the endpoint's
signing secret (``whsec_...``). While a secret is being rolled, Stripe signs with every
active secret, one ``v1`` each: any of them may match. A timestamp older than the
tolerance (300 s, Stripe's own default) is refused, so a captured delivery cannot be
replayed later; the event id dedupes replays within it.

Every candidate is compared in constant time, as bytes, and anything malformed (no
timestamp, no ``v1``, signatures that are not 64 hex digits) is simply ``False``.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Sequence

#: Stripe's default tolerance, in seconds: how old a signed timestamp may be.
TOLERANCE_SECONDS = 300
#: The signature scheme Stripe signs with (``v0`` is its test scheme, never accepted).
SCHEME = "v1"
_HEX_DIGITS = frozenset(string.hexdigits)
_SIGNATURE_LENGTH = 2 * hashlib.sha256().digest_size  # 64 hex digits
#: More than this many signatures in one header is not Stripe's (a few during a roll).
_MAX_SIGNATURES = 16
_MAX_TIMESTAMP_DIGITS = 12


def secret_bytes(name: str, secret: str | bytes) -> bytes:
    """``secret`` as bytes, or :class:`ValueError` if it is empty: an empty HMAC key is a
    key everyone knows, so it must stop the service at start-up rather than verify."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not isinstance(secret, bytes) or not secret.strip():
        raise ValueError(f"{name} must be a non-empty secret")
    return secret


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The hex ``v1`` signature of ``body`` at ``timestamp``, as Stripe computes it."""
    return hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[bytes], timestamp: int, body: bytes) -> str:
    """A ``Stripe-Signature`` value: the timestamp and one ``v1`` per secret."""
    signatures = ",".join(f"{SCHEME}={sign(secret, timestamp, body)}" for secret in secrets)
    return f"t={timestamp},{signatures}"


def parse_header(header: object) -> tuple[int, list[bytes]] | None:
    """The timestamp and the ``v1`` signatures (as digests) of a header, or ``None`` when
    it has no timestamp or no well-formed ``v1``."""
    if not isinstance(header, str) or not header.isascii():
        return None
    timestamp: int | None = None
    signatures: list[bytes] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and timestamp is None:
            if not (value.isdecimal() and len(value) <= _MAX_TIMESTAMP_DIGITS):
                return None
            timestamp = int(value)
        elif key == SCHEME and len(value) == _SIGNATURE_LENGTH and _HEX_DIGITS.issuperset(value):
            signatures.append(bytes.fromhex(value))
    if timestamp is None or not signatures or len(signatures) > _MAX_SIGNATURES:
        return None
    return timestamp, signatures


def verify(
    secrets: Sequence[bytes],
    body: object,
    header: object,
    *,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """Whether ``header`` signs the raw ``body`` with any of ``secrets`` (any ``v1`` may
    match), at a timestamp no more than ``tolerance`` seconds before ``now``. Every
    secret and every signature is compared, so timing does not tell which one matched."""
    if not isinstance(body, bytes | bytearray):
        return False
    parsed = parse_header(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    signed = b"%d." % timestamp + bytes(body)
    results = [
        hmac.compare_digest(hmac.new(secret, signed, hashlib.sha256).digest(), signature)
        for secret in secrets
        for signature in signatures
    ]
    return any(results) and timestamp >= now - tolerance
