"""Unknown ``kid`` values do not amplify into identity-provider fetches.

A local JWKS server counts its requests and answers slowly (or not until the test lets
it), as a distant provider would. Forged tokens with made-up kids cost at most one key-set
fetch per refetch interval, are refused at once while a fetch is in flight, and never hold
up tokens whose key is known; a genuinely rotated key is still picked up after the
interval, and a provider outage leaves the last key set in service.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fake_monotonic import FakeMonotonic
from jwks_support import STUCK_S, JwksServer, jwk

from tokenplans import AuthenticationError
from tokenplans_adapters.jwt_identity import JwksKeys, JwtIdentity
from tokenplans_adapters.jwt_identity.jwks import UnknownKeyError

Claims = Callable[..., dict[str, Any]]
Forge = Callable[..., str]


@pytest.fixture
def server(rsa_private_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    with JwksServer([jwk(rsa_private_key, "k1")]) as running:
        yield running


@pytest.fixture
def signed(rsa_private_pem: bytes, claims: Claims) -> Callable[[str], str]:
    """A genuine RS256 token with the test key, naming ``kid``."""

    def sign(kid: str, pem: bytes = rsa_private_pem) -> str:
        return jwt.encode(claims(), pem, algorithm="RS256", headers={"kid": kid})

    return sign


@pytest.fixture
def forged(forge: Forge, claims: Claims) -> Callable[[], str]:
    """An unsigned RS256 token naming a random kid: costs its sender nothing."""
    return lambda: forge({"alg": "RS256", "kid": uuid.uuid4().hex}, claims(), None)


def _refused(identity: JwtIdentity, token: str) -> bool:
    try:
        identity.authenticate(token)
    except AuthenticationError:
        return True
    return False


def test_sixty_forged_kids_on_a_cold_start_cost_one_fetch(
    server: JwksServer, forged: Callable[[], str], signed: Callable[[str], str]
) -> None:
    server.delay = 0.2  # a distant provider
    identity = JwtIdentity(jwks_url=server.url, algorithms=["RS256"])
    tokens = [forged() for _ in range(60)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        refused = list(pool.map(lambda token: _refused(identity, token), tokens))

    assert all(refused)
    assert server.requests == 1  # the first fetch only: every other thread waited for it
    assert identity.authenticate(signed("k1")).subject == "alice"
    assert server.requests == 1


def test_during_a_slow_refetch_unknown_kids_are_refused_at_once_and_known_ones_pass(
    server: JwksServer, forged: Callable[[], str], signed: Callable[[str], str]
) -> None:
    identity = JwtIdentity(jwks_url=server.url, algorithms=["RS256"], jwks_refetch_interval=0)
    identity.authenticate(signed("k1"))  # warm: fetch 1
    server.gate.clear()
    server.in_flight.clear()
    refetching = threading.Thread(target=_refused, args=(identity, forged()))
    refetching.start()  # an unknown kid: fetch 2, held at the server
    assert server.in_flight.wait(STUCK_S)
    answers: list[object] = []

    def meanwhile() -> None:
        answers.append(_refused(identity, forged()))
        answers.append(identity.authenticate(signed("k1")).subject)

    other = threading.Thread(target=meanwhile)
    other.start()
    other.join(STUCK_S)
    finished_while_fetch_held = not other.is_alive()
    server.gate.set()
    refetching.join()
    other.join()

    assert finished_while_fetch_held
    assert answers == [True, "alice"]
    assert server.requests == 2


def test_a_rotated_key_is_picked_up_after_the_refetch_interval(
    server: JwksServer, signed: Callable[[str], str]
) -> None:
    identity = JwtIdentity(jwks_url=server.url, algorithms=["RS256"], jwks_refetch_interval=0.3)
    assert identity.authenticate(signed("k1")).subject == "alice"
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server.keys = [*server.keys, jwk(rotated, "k2")]
    token = jwt.encode(
        jwt.decode(signed("k1"), options={"verify_signature": False}),
        rotated,
        algorithm="RS256",
        headers={"kid": "k2"},
    )

    time.sleep(0.4)  # past the interval: a busy machine only makes the wait longer

    assert identity.authenticate(token).subject == "alice"
    assert server.requests == 2


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


def test_an_unknown_kid_within_the_interval_is_refused_without_a_fetch(
    server: JwksServer, rsa_private_key: rsa.RSAPrivateKey, clock: FakeMonotonic
) -> None:
    keys = JwksKeys(server.url, refetch_interval=30, lifespan=300, clock=clock)
    keys.signing_key("k1")
    server.keys = [*server.keys, jwk(rsa_private_key, "k2")]

    with pytest.raises(UnknownKeyError, match="not in the key set fetched 0 s ago"):
        keys.signing_key("k2")
    clock.now += 29.9
    with pytest.raises(UnknownKeyError):
        keys.signing_key("k2")
    requests_within_interval = server.requests
    clock.now += 0.1
    found = keys.signing_key("k2")

    assert requests_within_interval == 1
    assert (found.key_id, server.requests) == ("k2", 2)


def test_the_key_set_is_refreshed_after_its_lifespan(
    server: JwksServer, clock: FakeMonotonic
) -> None:
    keys = JwksKeys(server.url, lifespan=300, clock=clock)
    keys.signing_key("k1")
    clock.now += 299
    keys.signing_key("k1")
    cached = server.requests
    clock.now += 1

    keys.signing_key("k1")

    assert (cached, server.requests) == (1, 2)


def test_a_provider_outage_keeps_the_last_key_set_and_is_not_hammered(
    server: JwksServer, clock: FakeMonotonic, caplog: pytest.LogCaptureFixture
) -> None:
    keys = JwksKeys(server.url, lifespan=300, refetch_interval=30, clock=clock)
    keys.signing_key("k1")
    server.status = 503
    clock.now += 301  # stale: the next lookup tries a refresh, which fails

    with caplog.at_level(logging.WARNING, logger="tokenplans_adapters.jwt_identity"):
        still_served = [keys.signing_key("k1").key_id for _ in range(20)]

    assert still_served == ["k1"] * 20
    assert server.requests == 2  # one failed refresh, not one per lookup
    assert len(caplog.records) == 1
    assert "cannot fetch the JWKS" in caplog.records[0].getMessage()


def test_an_unreachable_provider_on_a_cold_start_is_refused_and_tried_once_per_interval(
    forged: Callable[[], str], clock: FakeMonotonic
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/jwks.json"  # closed: nobody listens
    keys = JwksKeys(url, clock=clock)

    for _ in range(10):
        with pytest.raises(UnknownKeyError, match="no key set fetched yet"):
            keys.signing_key("k1")

    assert keys.fetches == 1


def test_a_token_with_a_refused_algorithm_or_no_kid_costs_no_fetch(
    server: JwksServer, forge: Forge, claims: Claims
) -> None:
    identity = JwtIdentity(jwks_url=server.url, algorithms=["RS256"])

    assert _refused(identity, forge({"alg": "HS256", "kid": "k1"}, claims(), b"x" * 32))
    assert _refused(identity, forge({"alg": "RS256"}, claims(), None))
    assert _refused(identity, forge({"alg": "RS256", "kid": 7}, claims(), None))
    assert server.requests == 0
