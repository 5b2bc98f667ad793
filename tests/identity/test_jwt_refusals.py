"""What a refusal leaves behind, and the scope rules a token must follow.

A refused token gets the one uniform 401, but its reason is logged at INFO, so a key,
``aud`` or ``iss`` mismatch can be debugged; the token and its signature never reach the
log. Scopes are separated by the ASCII space only (RFC 6749 section 3.3), and a scope with
a character outside the RFC's set refuses the whole token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jwt
import pytest

from tokenplans import ADMIN_SCOPE, AuthenticationError
from tokenplans_adapters.jwt_identity import JwtConfigError, JwtIdentity, mint_token

Claims = Callable[..., dict[str, Any]]

LOGGER = "tokenplans_adapters.jwt_identity"
AUDIENCE, ISSUER = "tokenplans", "https://id.example"


@pytest.fixture
def strict(secret: str) -> JwtIdentity:
    return JwtIdentity(secret=secret, audience=AUDIENCE, issuer=ISSUER)


def _good(claims: Claims, **overrides: Any) -> dict[str, Any]:
    return claims(**{"aud": AUDIENCE, "iss": ISSUER, **overrides})


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        (
            "wrong aud",
            "InvalidAudienceError: Audience doesn't match (token aud 'billing', "
            "expected 'tokenplans')",
        ),
        (
            "wrong iss",
            "InvalidIssuerError: Invalid issuer (token iss 'https://evil.example', "
            "expected 'https://id.example')",
        ),
        ("bad signature", "InvalidSignatureError: Signature verification failed"),
        ("expired", "ExpiredSignatureError: Signature has expired"),
    ],
)
def test_a_refusal_logs_its_reason_at_info_but_never_the_token(
    *,
    strict: JwtIdentity,
    secret: str,
    claims: Claims,
    now: datetime,
    caplog: pytest.LogCaptureFixture,
    case: str,
    reason: str,
) -> None:
    ts = int(now.timestamp())
    token = {
        "wrong aud": jwt.encode(_good(claims, aud="billing"), secret, algorithm="HS256"),
        "wrong iss": jwt.encode(
            _good(claims, iss="https://evil.example"), secret, algorithm="HS256"
        ),
        "bad signature": jwt.encode(_good(claims), "x" * 48, algorithm="HS256"),
        "expired": jwt.encode(_good(claims, exp=ts - 3600), secret, algorithm="HS256"),
    }[case]

    with caplog.at_level(logging.INFO, logger=LOGGER), pytest.raises(AuthenticationError) as e:
        strict.authenticate(token)

    (record,) = caplog.records
    assert str(e.value) == "invalid or expired token"
    assert record.levelno == logging.INFO
    assert record.getMessage() == f"refused a bearer token: {reason}"
    assert token not in caplog.text
    assert token.rsplit(".", 1)[1] not in caplog.text  # nor its signature


def test_a_reason_with_control_characters_stays_one_log_line(
    rsa_public_pem: bytes,
    claims: Claims,
    forge: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    identity = JwtIdentity(public_key=rsa_public_pem, algorithms=["RS256"])
    token = forge({"alg": "RS256"}, claims(scope="read\nINFO fake line"), None)

    with caplog.at_level(logging.INFO, logger=LOGGER), pytest.raises(AuthenticationError):
        identity.authenticate(token)

    assert "\n" not in caplog.records[0].getMessage()


def test_an_accepted_token_logs_nothing(
    strict: JwtIdentity, secret: str, claims: Claims, caplog: pytest.LogCaptureFixture
) -> None:
    token = jwt.encode(_good(claims), secret, algorithm="HS256")

    with caplog.at_level(logging.INFO, logger=LOGGER):
        strict.authenticate(token)

    assert caplog.records == []


# -- scopes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [
        "read\u2003tokenplans:admin",  # EM SPACE: str.split() saw two scopes here
        "read\ttokenplans:admin",
        "read\ntokenplans:admin",
        "read\u00a0tokenplans:admin",
        "tokenplans:admin\u200b",
        'read "quoted"',
        "back\\slash",
        "caf\u00e9",
    ],
)
def test_a_scope_claim_with_a_character_outside_rfc_6749_refuses_the_token(
    secret: str, claims: Claims, scope: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = jwt.encode(claims(scope=scope), secret, algorithm="HS256")

    with caplog.at_level(logging.INFO, logger=LOGGER), pytest.raises(AuthenticationError):
        JwtIdentity(secret=secret).authenticate(token)

    assert "outside RFC 6749's character set" in caplog.text


@pytest.mark.parametrize(
    "scopes",
    [["read\u2003tokenplans:admin"], ["tokenplans:admin", "read write"], [""], ["a\x00"]],
)
def test_every_entry_of_a_scopes_list_must_be_a_valid_scope(
    secret: str, claims: Claims, scopes: list[str]
) -> None:
    token = jwt.encode(claims(scopes=scopes), secret, algorithm="HS256")

    with pytest.raises(AuthenticationError):
        JwtIdentity(secret=secret).authenticate(token)


def test_scopes_split_on_the_ascii_space_only(secret: str, claims: Claims) -> None:
    token = jwt.encode(claims(scope="read  tokenplans:admin x!#[]~"), secret, algorithm="HS256")

    principal = JwtIdentity(secret=secret).authenticate(token)

    assert principal.scopes == {"read", ADMIN_SCOPE, "x!#[]~"}


def test_mint_token_refuses_a_scope_a_verifier_would_refuse(secret: str) -> None:
    with pytest.raises(JwtConfigError, match="printable ASCII"):
        mint_token("alice", secret=secret, scopes=["read write"])
