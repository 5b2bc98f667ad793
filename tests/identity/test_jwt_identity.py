"""The PyJWT identity adapter: which tokens prove a principal, and which never do.

The attack set is stated once as a table of hand-made tokens, each of which
must be refused with the same message, so a client cannot tell the checks apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt as jose_jwt
from jwks_support import JwksServer, jwk

from tokenplans import ADMIN_SCOPE, AuthenticationError, Principal
from tokenplans_adapters.jwt_identity import (
    MAX_TOKEN_BYTES,
    JwtConfigError,
    JwtIdentity,
    mint_token,
)

Claims = Callable[..., dict[str, Any]]
Forge = Callable[..., str]


@pytest.fixture
def identity(secret: str) -> JwtIdentity:
    return JwtIdentity(secret=secret)


def refused_message(identity: JwtIdentity, token: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        identity.authenticate(token)
    return str(caught.value)


# -- accepted ---------------------------------------------------------------------------


def test_a_token_minted_by_the_cli_proves_its_subject_and_scopes(
    identity: JwtIdentity, secret: str
) -> None:
    token = mint_token("alice", secret=secret, scopes=[ADMIN_SCOPE, "read"])

    assert identity.authenticate(token) == Principal("alice", frozenset({ADMIN_SCOPE, "read"}))


def test_a_token_minted_by_python_jose_as_the_reference_did_is_accepted(
    identity: JwtIdentity, secret: str, claims: Claims
) -> None:
    token = jose_jwt.encode(claims(sub=None, user_id=42), secret, algorithm="HS256")

    assert identity.authenticate(token) == Principal("42")


def test_an_rs256_token_minted_by_python_jose_is_accepted_with_the_public_key(
    rsa_private_pem: bytes, rsa_public_pem: bytes, claims: Claims
) -> None:
    identity = JwtIdentity(public_key=rsa_public_pem, algorithms=["RS256"])
    token = jose_jwt.encode(claims(), rsa_private_pem.decode(), algorithm="RS256")

    assert identity.authenticate(token).subject == "alice"


def test_an_es256_token_is_accepted_with_an_ec_public_key(
    ec_private_key: ec.EllipticCurvePrivateKey, ec_public_pem: bytes, claims: Claims
) -> None:
    identity = JwtIdentity(public_key=ec_public_pem.decode(), algorithms=["ES256"])
    token = jwt.encode(claims(scope="a b"), ec_private_key, algorithm="ES256")

    assert identity.authenticate(token) == Principal("alice", frozenset({"a", "b"}))


def test_an_integer_user_id_claim_counts_as_its_decimal_text(
    identity: JwtIdentity, secret: str, claims: Claims
) -> None:
    token = jwt.encode(claims(sub=None, user_id=1234567890123), secret, algorithm="HS256")

    assert identity.authenticate(token).subject == "1234567890123"


def test_sub_wins_over_user_id_when_both_are_present(
    identity: JwtIdentity, secret: str, claims: Claims
) -> None:
    token = jwt.encode(claims(sub="alice", user_id=7), secret, algorithm="HS256")

    assert identity.authenticate(token).subject == "alice"


def test_scope_and_scopes_claims_are_merged(
    identity: JwtIdentity, secret: str, claims: Claims
) -> None:
    token = jwt.encode(
        claims(scope="  read   write ", scopes=["tokenplans:admin", "read"]),
        secret,
        algorithm="HS256",
    )

    assert identity.authenticate(token).scopes == {"read", "write", "tokenplans:admin"}
    assert identity.authenticate(token).is_admin


def test_a_token_expired_within_the_leeway_is_still_accepted(
    identity: JwtIdentity, secret: str, claims: Claims, now: datetime
) -> None:
    token = jwt.encode(claims(exp=int(now.timestamp()) - 10), secret, algorithm="HS256")

    assert identity.authenticate(token).subject == "alice"


def test_a_token_without_exp_is_accepted_only_when_configured_so(
    secret: str, claims: Claims
) -> None:
    token = jwt.encode(claims(exp=None), secret, algorithm="HS256")

    assert JwtIdentity(secret=secret, require_exp=False).authenticate(token).subject == "alice"
    with pytest.raises(AuthenticationError):
        JwtIdentity(secret=secret).authenticate(token)


def test_audience_and_issuer_are_accepted_when_they_match(secret: str, claims: Claims) -> None:
    identity = JwtIdentity(secret=secret, audience="tokenplans", issuer="https://id.example")
    token = jwt.encode(
        claims(aud="tokenplans", iss="https://id.example"), secret, algorithm="HS256"
    )

    assert identity.authenticate(token).subject == "alice"


def test_minted_tokens_expire_after_their_time_to_live(secret: str) -> None:
    issued = datetime.now(UTC) - timedelta(hours=2)
    token = mint_token("alice", secret=secret, ttl=timedelta(hours=1), now=issued)

    with pytest.raises(AuthenticationError):
        JwtIdentity(secret=secret).authenticate(token)


# -- remembered tokens ------------------------------------------------------------------


def _tokens_decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens PyJWT is asked to verify from now on (it still verifies them)."""
    decoded: list[str] = []
    verify = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("options", {}).get("verify_signature", True):  # not a log line's read
            decoded.append(token)
        return verify(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return decoded


def test_a_token_verified_once_is_answered_again_without_decoding(
    identity: JwtIdentity, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = mint_token("alice", secret=secret, scopes=[ADMIN_SCOPE])
    decoded = _tokens_decoded(monkeypatch)

    answers = {identity.authenticate(token) for _ in range(5)}

    assert answers == {Principal("alice", frozenset({ADMIN_SCOPE}))}
    assert decoded == [token]


def test_a_remembered_token_is_refused_once_past_its_exp_and_leeway(
    secret: str, claims: Claims
) -> None:
    identity = JwtIdentity(secret=secret, leeway=timedelta(0))
    token = jwt.encode(claims(exp=int(time.time()) + 1), secret, algorithm="HS256")
    assert identity.authenticate(token).subject == "alice"

    time.sleep(2.1)  # past exp: a busy machine only makes the wait longer

    with pytest.raises(AuthenticationError):
        identity.authenticate(token)


def test_a_token_is_verified_again_after_the_cache_seconds(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = JwtIdentity(secret=secret, verified_cache_seconds=0.2)
    token = mint_token("alice", secret=secret)
    decoded = _tokens_decoded(monkeypatch)
    identity.authenticate(token)

    time.sleep(0.3)
    identity.authenticate(token)

    assert decoded == [token, token]


def test_refused_tokens_are_never_remembered(
    identity: JwtIdentity, attack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = _tokens_decoded(monkeypatch)

    messages = {refused_message(identity, attack) for _ in range(3)}

    assert messages == {"invalid or expired token"}
    assert len(identity._verified) == 0
    assert len(decoded) in (0, 3)  # refused before decoding (size, shape) or decoded each time


def test_a_token_signed_again_with_another_key_is_not_taken_for_the_remembered_one(
    identity: JwtIdentity, secret: str, claims: Claims
) -> None:
    good = jwt.encode(claims(), secret, algorithm="HS256")
    identity.authenticate(good)
    header_and_claims = good.rpartition(".")[0]
    forged = jwt.encode(claims(), "another-secret-that-is-long-enough-012345", algorithm="HS256")

    with pytest.raises(AuthenticationError):
        identity.authenticate(f"{header_and_claims}.{forged.rpartition('.')[2]}")


def test_the_cache_keeps_at_most_its_size_and_can_be_turned_off(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bounded = JwtIdentity(secret=secret, verified_cache_size=3)
    off = JwtIdentity(secret=secret, verified_cache_size=0)
    tokens = [mint_token(f"user-{index}", secret=secret) for index in range(5)]
    for token in tokens:
        bounded.authenticate(token)
    decoded = _tokens_decoded(monkeypatch)

    subjects = [bounded.authenticate(token).subject for token in tokens]
    off.authenticate(tokens[0])
    off.authenticate(tokens[0])

    assert subjects == [f"user-{index}" for index in range(5)]
    assert len(bounded._verified) <= 3
    assert decoded[:2] == tokens[:2]  # the oldest made room; the newest were remembered
    assert decoded[-2:] == [tokens[0], tokens[0]]
    with pytest.raises(JwtConfigError):
        JwtIdentity(secret=secret, verified_cache_size=-1)


# -- the attack set ---------------------------------------------------------------------


def test_every_attack_token_is_refused_with_the_same_message(
    identity: JwtIdentity, attack: str
) -> None:
    assert refused_message(identity, attack) == "invalid or expired token"


def test_the_16_kb_token_is_refused_for_its_size_although_its_signature_is_good(
    identity: JwtIdentity, secret: str, claims: Claims
) -> None:
    token = jwt.encode(claims(pad="x" * 16 * 1024), secret, algorithm="HS256")
    assert len(token) > MAX_TOKEN_BYTES

    with pytest.raises(AuthenticationError):
        identity.authenticate(token)
    # Within the limit, the very same claims shape is fine.
    assert identity.authenticate(jwt.encode(claims(pad="x" * 1024), secret, algorithm="HS256"))


def test_hs256_signed_with_the_rs256_public_key_is_refused(
    rsa_public_pem: bytes, claims: Claims, forge: Forge
) -> None:
    """Algorithm confusion: a verifier that handed its PEM to HMAC would accept this."""
    identity = JwtIdentity(public_key=rsa_public_pem, algorithms=["RS256"])
    token = forge({"alg": "HS256", "typ": "JWT"}, claims(), rsa_public_pem)

    assert refused_message(identity, token) == "invalid or expired token"


def test_wrong_audience_or_issuer_is_refused_when_configured(secret: str, claims: Claims) -> None:
    identity = JwtIdentity(secret=secret, audience="tokenplans", issuer="https://id.example")
    good = {"aud": "tokenplans", "iss": "https://id.example"}

    for bad in (
        {**good, "aud": "someone-else"},
        {**good, "iss": "https://evil.example"},
        {**good, "aud": None},
        {**good, "iss": None},
    ):
        token = jwt.encode(claims(**bad), secret, algorithm="HS256")
        assert refused_message(identity, token) == "invalid or expired token"


def test_an_rs256_identity_refuses_a_token_signed_by_another_key(
    rsa_public_pem: bytes, claims: Claims
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    identity = JwtIdentity(public_key=rsa_public_pem, algorithms=["RS256"])

    with pytest.raises(AuthenticationError):
        identity.authenticate(jwt.encode(claims(), other, algorithm="RS256"))


# -- JWKS -------------------------------------------------------------------------------


@pytest.fixture
def jwks_url(rsa_private_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A local JWKS endpoint publishing the test RSA key as kid "k1"."""
    with JwksServer([jwk(rsa_private_key, "k1")]) as server:
        yield server.url


def test_a_jwks_identity_accepts_a_token_signed_by_a_published_key(
    jwks_url: str, rsa_private_pem: bytes, claims: Claims
) -> None:
    identity = JwtIdentity(jwks_url=jwks_url, algorithms=["RS256"])
    token = jwt.encode(claims(), rsa_private_pem, algorithm="RS256", headers={"kid": "k1"})

    assert identity.authenticate(token).subject == "alice"


def test_a_jwks_identity_refuses_unknown_kids_and_hmac_tokens(
    jwks_url: str, rsa_private_pem: bytes, claims: Claims, forge: Forge
) -> None:
    identity = JwtIdentity(jwks_url=jwks_url, algorithms=["RS256"])
    unknown_kid = jwt.encode(claims(), rsa_private_pem, algorithm="RS256", headers={"kid": "k9"})
    hmac_forgery = forge({"alg": "HS256", "kid": "k1"}, claims(), b"x" * 32)

    assert refused_message(identity, unknown_kid) == "invalid or expired token"
    assert refused_message(identity, hmac_forgery) == "invalid or expired token"


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"secret": "s" * 64, "algorithms": ["none"]}, "unsupported"),
        ({"secret": "s" * 64, "algorithms": ["HS256", "RS256"]}, "HS256/HS384/HS512 only"),
        ({"secret": "too-short"}, "needs at least 32"),
        ({"secret": "s" * 40, "algorithms": ["HS512"]}, "needs at least 64"),
        ({}, "exactly one"),
        ({"secret": "s" * 64, "jwks_url": "http://x"}, "exactly one"),
        ({"jwks_url": "http://x", "algorithms": ["HS256"]}, "need a secret"),
        ({"public_key": "not a pem", "algorithms": ["RS256"]}, "not a PEM"),
        ({"secret": "s" * 64, "algorithms": []}, "at least one"),
    ],
)
def test_an_unusable_configuration_is_refused_at_start_up(
    options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(JwtConfigError, match=problem):
        JwtIdentity(**options)


def test_an_ec_key_cannot_be_configured_for_rs256(ec_public_pem: bytes) -> None:
    with pytest.raises(JwtConfigError, match="cannot be verified with this public key"):
        JwtIdentity(public_key=ec_public_pem, algorithms=["RS256"])


def test_the_secret_never_appears_in_the_repr(secret: str) -> None:
    assert secret not in repr(JwtIdentity(secret=secret))
    assert "***" in repr(JwtIdentity(secret=secret))


def test_mint_token_refuses_a_short_secret_and_a_naive_time() -> None:
    with pytest.raises(JwtConfigError, match="needs at least 32"):
        mint_token("alice", secret="short")
    with pytest.raises(JwtConfigError, match="aware"):
        mint_token("alice", secret="s" * 32, now=datetime(2026, 1, 1))  # noqa: DTZ001
