"""Keys and token builders for the identity tests.

Keys are generated once per session (RSA generation is slow) and never leave the test run.
The ``forge`` fixture signs arbitrary headers by hand, so the attack tokens do not depend on what
PyJWT is willing to produce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SECRET = "correct-horse-battery-staple-0123456789abcdef"  # 45 bytes: enough for HS256


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: Mapping[str, Any], claims: Mapping[str, Any], hmac_key: bytes | None) -> str:
    """A compact JWS with exactly this header, HMAC-SHA256-signed with ``hmac_key`` (or
    unsigned when ``None``)."""
    signing_input = (
        f"{_b64url(json.dumps(dict(header)).encode())}.{_b64url(json.dumps(dict(claims)).encode())}"
    )
    signature = (
        b""
        if hmac_key is None
        else hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{_b64url(signature)}"


def timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


@pytest.fixture
def forge() -> Callable[[Mapping[str, Any], Mapping[str, Any], bytes | None], str]:
    """Hand-made tokens: ``forge(header, claims, hmac_key)``."""
    return _forge


@pytest.fixture
def secret() -> str:
    return SECRET


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="session")
def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa_private_pem(rsa_private_key: rsa.RSAPrivateKey) -> bytes:
    return rsa_private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def rsa_public_pem(rsa_private_key: rsa.RSAPrivateKey) -> bytes:
    return rsa_private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="session")
def ec_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def ec_public_pem(ec_private_key: ec.EllipticCurvePrivateKey) -> bytes:
    return ec_private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def claims(now: datetime) -> Callable[..., dict[str, Any]]:
    """Valid claims for "alice", one hour to live; keyword arguments override or add
    (``None`` removes a claim)."""

    def build(**overrides: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "sub": "alice",
            "iat": timestamp(now),
            "exp": timestamp(now) + 3600,
        }
        base.update(overrides)
        return {key: value for key, value in base.items() if value is not None}

    return build
