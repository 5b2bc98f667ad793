"""Host routes behind tokenplans' dependencies answer exactly as tokenplans' own routes do."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from fastapi_support import SECRET, bearer, build_host, token
from gated_store import free_call_while_gated

EXPIRED = datetime.now(UTC) - timedelta(hours=1)
#: Every way to not be authenticated: the 401 must not tell them apart.
NOT_AUTHENTICATED = {
    "missing": {},
    "not bearer": {"Authorization": f"Basic {token('alice')}"},
    "empty bearer": {"Authorization": "Bearer "},
    "malformed": {"Authorization": "Bearer not.a.jwt"},
    "expired": {"Authorization": f"Bearer {token('alice', expires=EXPIRED)}"},
    "badly signed": {
        "Authorization": "Bearer "
        + jwt.encode({"sub": "alice", "exp": 2**31}, SECRET[::-1], algorithm="HS256")
    },
}


@pytest.fixture
def client() -> TestClient:
    return TestClient(build_host()[0])


def _answer(response: httpx.Response) -> tuple[int, object, str | None]:
    return response.status_code, response.json(), response.headers.get("WWW-Authenticate")


def test_every_unauthenticated_call_gets_the_one_401_of_tokenplans_routes(
    client: TestClient,
) -> None:
    host_answers = {
        cause: _answer(client.get("/me", headers=headers))
        for cause, headers in NOT_AUTHENTICATED.items()
    }
    billing_answers = {
        cause: _answer(client.get("/billing/api/tokens/usage", headers=headers))
        for cause, headers in NOT_AUTHENTICATED.items()
    }

    assert list(host_answers.values()) == [(401, {"error": "unauthorized"}, "Bearer")] * len(
        NOT_AUTHENTICATED
    )
    assert host_answers == billing_answers


def test_a_valid_token_gives_the_host_route_its_principal(client: TestClient) -> None:
    assert client.get("/me", headers=bearer("alice")).json() == {"subject": "alice"}


def test_admin_only_host_routes_refuse_users_with_tokenplans_403(client: TestClient) -> None:
    refused = client.get("/ops", headers=bearer("alice"))
    theirs = client.get("/billing/api/admin/accounts/bob", headers=bearer("alice"))
    allowed = client.get("/ops", headers=bearer("root", admin=True))

    assert (refused.status_code, refused.json()) == (theirs.status_code, theirs.json())
    assert refused.json()["reason"] == "admin_only"
    assert (allowed.status_code, allowed.json()) == (200, {"admin": "root"})
    assert client.get("/ops").status_code == 401


def test_a_fixed_charge_debits_before_the_endpoint_runs() -> None:
    host, _ = build_host()
    client = TestClient(host)

    answer = client.post("/summarise", headers=bearer("alice"))

    assert answer.json() == {"remaining": 900}  # basic: 1000 a month
    usage = client.get("/billing/api/tokens/usage", headers=bearer("alice")).json()
    assert usage["token_used"] == 100


def test_a_short_balance_in_a_host_route_is_tokenplans_402_and_the_endpoint_never_runs() -> None:
    host, _ = build_host()
    client = TestClient(host)

    refused = client.post(
        "/chat", headers=bearer("alice"), json={"prompt": "hello", "max_tokens": 1001}
    )
    theirs = client.post(
        "/billing/api/tokens/consume", headers=bearer("alice"), json={"amount": 1001}
    )

    assert refused.status_code == 402
    assert refused.json() == {"error": "insufficient tokens", "remaining": 1000, "requested": 1001}
    assert refused.json() == theirs.json()
    assert host.state.ran == []
    assert (
        client.get("/billing/api/tokens/usage", headers=bearer("alice")).json()["token_used"] == 0
    )


def test_a_computed_charge_with_an_idempotency_key_debits_once_per_key() -> None:
    host, _ = build_host()
    client = TestClient(host)
    request = {"prompt": "hello", "max_tokens": 300}
    headers = {**bearer("alice"), "Idempotency-Key": "chat-1"}

    first = client.post("/chat", headers=headers, json=request).json()
    retry = client.post("/chat", headers=headers, json=request)

    assert (first["charged"], first["replayed"]) == (300, False)
    assert retry.status_code == 409  # answered before the endpoint: no second model call
    assert (retry.json()["error"], retry.json()["amount"]) == ("already processed", 300)
    assert (
        client.get("/billing/api/tokens/usage", headers=bearer("alice")).json()["token_used"] == 300
    )


def test_the_charged_route_validates_its_body_before_charging(client: TestClient) -> None:
    answer = client.post("/chat", headers=bearer("alice"), json={"prompt": "hello"})

    assert answer.status_code == 422  # FastAPI's own validation answer: the host's business
    assert (
        client.get("/billing/api/tokens/usage", headers=bearer("alice")).json()["token_used"] == 0
    )


def test_a_core_error_raised_in_a_host_route_is_tokenplans_json(client: TestClient) -> None:
    answer = client.get("/outage")

    assert (answer.status_code, answer.json()) == (503, {"error": "database unavailable"})
    assert answer.headers["Retry-After"] == "1"
    assert "db.internal" not in answer.text  # the driver's message is logged, not echoed


def test_the_host_keeps_its_own_answers_for_unknown_routes(client: TestClient) -> None:
    assert client.get("/nowhere").json() == {"detail": "Not Found"}


def test_a_charge_outside_the_core_limits_is_refused_when_declared() -> None:
    _, tp = build_host()

    with pytest.raises(ValueError, match="amount"):
        tp.charge(0)


IN_FLIGHT = 20


def test_the_host_loop_stays_free_while_charged_calls_wait_on_a_slow_store() -> None:
    seen = asyncio.run(
        free_call_while_gated(
            lambda store: build_host(store)[0],
            lambda client, n: client.post("/summarise", headers=bearer(f"user-{n}")),
            lambda client: client.get("/health"),
            in_flight=IN_FLIGHT,
        )
    )

    assert seen.inside_at_once == IN_FLIGHT  # side by side, in worker threads
    assert seen.free_status == 200
    assert seen.inside_after_free == IN_FLIGHT  # health waited for none of them
    assert seen.slow_statuses == [200] * IN_FLIGHT
