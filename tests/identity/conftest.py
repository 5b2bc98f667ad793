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

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.utils import base64url_encode

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


# -- the attack set ---------------------------------------------------------------------

ATTACKS = [
    "alg none",
    "alg None spelled oddly",
    "expired",
    "not yet valid",
    "issued in the future",
    "wrong signature",
    "signature stripped",
    "payload swapped",
    "rs256 token for an hs256 service",
    "no exp",
    "no subject",
    "empty subject",
    "boolean user_id",
    "float user_id",
    "list subject",
    "subject over 255 characters",
    "scope not a string",
    "scopes not a list of strings",
    "audience nobody configured",
    "garbage",
    "three garbage parts",
    "empty",
    "non-ascii",
    "16 KB token",
]


OTHER_SECRET = "another-secret-of-sufficient-length-0123456789"


def _attack_tokens(
    secret: str,
    claims: Callable[..., dict[str, Any]],
    forge: Callable[..., str],
    now: datetime,
    rsa_private_pem: bytes,
) -> dict[str, str]:
    """Every token an HS256 identity with secret ``secret`` must refuse."""
    ts = int(now.timestamp())
    hs256 = {"alg": "HS256", "typ": "JWT"}
    return {
        "alg none": forge({"alg": "none", "typ": "JWT"}, claims(), None),
        "alg None spelled oddly": forge({"alg": "None", "typ": "JWT"}, claims(), None),
        "expired": jwt.encode(claims(exp=ts - 3600), secret, algorithm="HS256"),
        "not yet valid": jwt.encode(claims(nbf=ts + 3600), secret, algorithm="HS256"),
        "issued in the future": jwt.encode(claims(iat=ts + 3600), secret, algorithm="HS256"),
        "wrong signature": jwt.encode(claims(), OTHER_SECRET, algorithm="HS256"),
        "signature stripped": forge(hs256, claims(), secret.encode()).rsplit(".", 1)[0] + ".",
        "payload swapped": _swap_payload(
            jwt.encode(claims(), secret, algorithm="HS256"), claims(sub="mallory")
        ),
        "rs256 token for an hs256 service": jwt.encode(
            claims(), rsa_private_pem, algorithm="RS256"
        ),
        "no exp": jwt.encode(claims(exp=None), secret, algorithm="HS256"),
        "no subject": jwt.encode(claims(sub=None), secret, algorithm="HS256"),
        "empty subject": jwt.encode(claims(sub=""), secret, algorithm="HS256"),
        "boolean user_id": jwt.encode(claims(sub=None, user_id=True), secret, algorithm="HS256"),
        "float user_id": jwt.encode(claims(sub=None, user_id=4.2), secret, algorithm="HS256"),
        "list subject": jwt.encode(claims(sub=["alice"]), secret, algorithm="HS256"),
        "subject over 255 characters": jwt.encode(claims(sub="a" * 256), secret, algorithm="HS256"),
        "scope not a string": jwt.encode(claims(scope=["a"]), secret, algorithm="HS256"),
        "scopes not a list of strings": jwt.encode(claims(scopes=[1]), secret, algorithm="HS256"),
        "audience nobody configured": jwt.encode(claims(aud="other"), secret, algorithm="HS256"),
        "garbage": "not-a-jwt",
        "three garbage parts": "abc.def.ghi",
        "empty": "",
        "non-ascii": "héllo.wörld.!",
        "16 KB token": jwt.encode(claims(pad="x" * 16 * 1024), secret, algorithm="HS256"),
    }


def _swap_payload(token: str, claims: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    forged = base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{forged}.{signature}"


@pytest.fixture
def attack_set(
    secret: str,
    claims: Callable[..., dict[str, Any]],
    forge: Callable[..., str],
    now: datetime,
    rsa_private_pem: bytes,
) -> dict[str, str]:
    tokens = _attack_tokens(secret, claims, forge, now, rsa_private_pem)
    assert sorted(tokens) == sorted(ATTACKS)
    return tokens


@pytest.fixture(params=ATTACKS)
def attack(request: pytest.FixtureRequest, attack_set: dict[str, str]) -> str:
    """Each token of the attack set that an HS256 identity with ``secret``
    must refuse, one per test."""
    token: str = attack_set[request.param]
    return token
