"""Where the identity check runs: inline on the event loop when the provider says it never
blocks, in the thread pool otherwise (the safe default for providers that say nothing)."""

from __future__ import annotations

import threading

from starlette.testclient import TestClient

from tokenplans import PlanCatalog, Principal, TokenService
from tokenplans.ports import BlockingHint, KnowsCredentials
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.http import create_app
from tokenplans_adapters.jwt_identity import JwtIdentity, mint_token


class RecordingIdentity:
    """Accepts any credential as ``alice`` and remembers which thread checked it."""

    def __init__(self, *, may_block: bool | None) -> None:
        if may_block is not None:
            self.may_block = may_block
        self.threads: list[str] = []

    def authenticate(self, credential: str) -> Principal:
        self.threads.append(threading.current_thread().name)
        return Principal("alice")


def checking_thread(identity: RecordingIdentity) -> str:
    service = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())
    with TestClient(create_app(service, identity)) as client:
        loop_thread = client.portal.call(lambda: threading.current_thread().name)
        response = client.get("/api/tokens/usage", headers={"Authorization": "Bearer x"})
    assert response.status_code == 200
    return "event loop" if identity.threads == [loop_thread] else "worker thread"


def test_a_provider_that_never_blocks_is_checked_on_the_event_loop() -> None:
    assert checking_thread(RecordingIdentity(may_block=False)) == "event loop"


def test_a_provider_that_may_block_is_checked_in_the_thread_pool() -> None:
    assert checking_thread(RecordingIdentity(may_block=True)) == "worker thread"


def test_a_provider_that_says_nothing_is_checked_in_the_thread_pool() -> None:
    assert checking_thread(RecordingIdentity(may_block=None)) == "worker thread"


def test_jwt_identity_may_block_only_when_it_fetches_keys_from_a_jwks_url() -> None:
    by_secret = JwtIdentity(secret="a-secret-that-is-at-least-32-bytes-long!")
    by_jwks = JwtIdentity(
        jwks_url="https://issuer.example/.well-known/jwks.json", algorithms=["RS256"]
    )

    assert (by_secret.may_block, by_jwks.may_block) == (False, True)


class RememberingIdentity(RecordingIdentity):
    """May block, but knows a credential it checked before (as ``JwtIdentity`` does)."""

    def __init__(self) -> None:
        super().__init__(may_block=True)
        self.seen: set[str] = set()
        self.asked: list[str] = []

    def authenticate(self, credential: str) -> Principal:
        self.seen.add(credential)
        return super().authenticate(credential)

    def known(self, credential: str) -> Principal | None:
        self.asked.append(threading.current_thread().name)
        return Principal("alice") if credential in self.seen else None


def test_a_provider_that_may_block_answers_a_credential_it_knows_on_the_event_loop() -> None:
    identity = RememberingIdentity()
    service = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())
    with TestClient(create_app(service, identity)) as client:
        loop_thread = client.portal.call(lambda: threading.current_thread().name)
        answers = [
            client.get("/api/tokens/usage", headers={"Authorization": "Bearer x"}).status_code
            for _ in range(3)
        ]

    assert answers == [200, 200, 200]
    assert len(identity.threads) == 1  # checked in full once, in a worker thread
    assert identity.threads[0] != loop_thread
    assert identity.asked == [loop_thread] * 3


def test_jwt_identity_knows_only_the_tokens_it_verified() -> None:
    secret = "a-secret-that-is-at-least-32-bytes-long!"
    identity = JwtIdentity(secret=secret)
    token = mint_token("alice", secret=secret)
    forged = mint_token("alice", secret="another-secret-that-is-32-bytes-long!!")

    before = identity.known(token)
    identity.authenticate(token)

    assert before is None
    assert identity.known(token) == Principal("alice")
    assert identity.known(forged) is None


def test_jwt_identity_declares_its_capabilities_by_type() -> None:
    by_secret = JwtIdentity(secret="a-secret-that-is-at-least-32-bytes-long!")

    assert isinstance(by_secret, BlockingHint)
    assert isinstance(by_secret, KnowsCredentials)
    assert not isinstance(RecordingIdentity(may_block=None), BlockingHint | KnowsCredentials)
