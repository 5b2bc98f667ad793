"""Every error status of the error table (docs/http-api.md), each a JSON ``{"error": ...}`` and
never a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator

import pytest
from http_support import ALICE, ROOT, build_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message

from tokenplans import (
    Account,
    AccountBusyError,
    GatewayError,
    PaymentError,
    PaymentNotFoundError,
    StorageUnavailableError,
)
from tokenplans.testing import InMemoryStore

UNAUTHORIZED = {"error": "unauthorized"}


# -- 401 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer not-a-known-token",
        "Basic YWxpY2U6c2VjcmV0",
        "alice-token",
        "Token alice-token",
        "Bearer " + "x" * 16_000,
    ],
)
def test_a_missing_or_bad_credential_is_401_with_the_same_body(
    client: TestClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = client.get("/api/tokens/usage", headers=headers)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tokens/usage"),
        ("POST", "/api/tokens/set-plan"),
        ("POST", "/api/tokens/consume"),
        ("GET", "/api/tokens/ledger"),
        ("GET", "/api/admin/accounts/alice"),
        ("POST", "/api/admin/accounts/alice/set-plan"),
        ("POST", "/api/admin/accounts/alice/grant"),
        ("POST", "/api/admin/accounts/alice/consume"),
        ("GET", "/api/admin/accounts/alice/ledger"),
    ],
)
def test_every_account_route_needs_a_credential(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, json={"amount": 1, "plan": "basic"})

    assert (response.status_code, response.json()) == (401, UNAUTHORIZED)


def test_public_routes_ignore_a_bad_credential(client: TestClient) -> None:
    headers = {"Authorization": "Bearer forged"}

    assert client.get("/api/health", headers=headers).status_code == 200
    assert client.get("/api/plans", headers=headers).status_code == 200


# -- 403, 400, 402, 409 -----------------------------------------------------------


def test_an_upgrade_without_payment_is_403_payment_required(client: TestClient) -> None:
    response = client.post("/api/tokens/set-plan", headers=ALICE, json={"plan": "premium"})

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert response.json()["reason"] == "payment_required"


def test_an_unknown_plan_is_400_invalid_plan(client: TestClient) -> None:
    response = client.post("/api/tokens/set-plan", headers=ALICE, json={"plan": "platinum"})

    assert (response.status_code, response.json()) == (
        400,
        {"error": "invalid plan", "plan": "platinum"},
    )


def test_consuming_more_than_remains_is_402_and_changes_nothing(client: TestClient) -> None:
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 900})

    response = client.post("/api/tokens/consume", headers=ALICE, json={"amount": 101})

    assert response.status_code == 402
    assert response.json() == {"error": "insufficient tokens", "remaining": 100, "requested": 101}
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 900


def test_reusing_a_key_for_another_amount_is_409(client: TestClient) -> None:
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 5, "idempotency_key": "k"})

    response = client.post(
        "/api/tokens/consume", headers=ALICE, json={"amount": 6, "idempotency_key": "k"}
    )

    assert response.status_code == 409
    assert response.json()["error"] == "idempotency conflict"
    assert (response.json()["idempotency_key"], response.json()["first_amount"]) == ("k", 5)
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 5


# -- 404, 405 ---------------------------------------------------------------------


def test_an_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/tokens/nothing-here")

    assert (response.status_code, response.json()) == (404, {"error": "not found"})


def test_a_wrong_method_is_a_json_405_naming_the_allowed_one(client: TestClient) -> None:
    response = client.delete("/api/tokens/usage", headers=ALICE)

    assert (response.status_code, response.json()) == (405, {"error": "method not allowed"})
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD"}


# -- 413 --------------------------------------------------------------------------


def test_a_body_declared_too_large_is_413(make_app: Callable[..., Starlette]) -> None:
    client = TestClient(make_app(max_body_bytes=100))

    response = client.post(
        "/api/tokens/consume", headers=ALICE, content=b'{"amount": 1}' + b" " * 100
    )

    assert (response.status_code, response.json()) == (
        413,
        {"error": "request body too large", "max_bytes": 100},
    )


def test_a_streamed_body_is_cut_off_at_the_limit(make_app: Callable[..., Starlette]) -> None:
    client = TestClient(make_app(max_body_bytes=100))

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"amount": 1'
        for _ in range(50):
            yield b"          "
        yield b"}"

    response = client.post("/api/tokens/consume", headers=ALICE, content=chunks())

    assert response.status_code == 413
    assert response.json()["error"] == "request body too large"
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 0


def test_the_default_limit_is_64_kib(client: TestClient) -> None:
    padded = b'{"amount": 1' + b" " * (64 * 1024) + b"}"

    response = client.post("/api/tokens/consume", headers=ALICE, content=padded)

    assert response.status_code == 413


# -- 408 --------------------------------------------------------------------------

HANG_GUARD_SECONDS = 30.0


async def _post_slowly(app: Starlette, more: Callable[[], Awaitable[bytes]]) -> Message:
    """POST a consume whose body starts, then continues only as ``more`` delivers it; the
    app's answer as one message (status, headers, body)."""
    started = False

    async def receive() -> Message:
        nonlocal started
        if not started:
            started = True
            return {"type": "http.request", "body": b'{"amount": 1', "more_body": True}
        return {"type": "http.request", "body": await more(), "more_body": True}

    answer: Message = {"body": b""}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer.update(status=message["status"], headers=dict(message["headers"]))
        else:
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/tokens/consume",
        "raw_path": b"/api/tokens/consume",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", b"Bearer alice-token"),
            (b"content-type", b"application/json"),
        ],
        "server": ("testserver", 80),
        "client": ("client", 1234),
    }
    await asyncio.wait_for(app(scope, receive, send), HANG_GUARD_SECONDS)
    return answer


async def _stall() -> bytes:
    await asyncio.Event().wait()  # never set: the client went quiet mid-body
    return b""


async def _trickle() -> bytes:
    await asyncio.sleep(0.01)  # a byte at a time, for ever: each chunk arrives in time
    return b" "


@pytest.mark.parametrize("more", [_stall, _trickle], ids=["stalled", "trickled"])
def test_a_body_not_received_within_the_timeout_is_a_408(
    make_app: Callable[..., Starlette], more: Callable[[], Awaitable[bytes]]
) -> None:
    app = make_app(body_timeout_seconds=0.2)

    answer = asyncio.run(_post_slowly(app, more))

    assert answer["status"] == 408
    assert answer["headers"][b"connection"] == b"close"
    assert json.loads(answer["body"]) == {
        "error": "request timeout",
        "message": "request body not received within 0.2 s",
    }
    assert TestClient(app).get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 0


def test_a_body_that_arrives_in_time_is_served(make_app: Callable[..., Starlette]) -> None:
    client = TestClient(make_app(body_timeout_seconds=HANG_GUARD_SECONDS))

    response = client.post("/api/tokens/consume", headers=ALICE, json={"amount": 3})

    assert response.status_code == 200


def test_the_body_timeout_must_be_positive(make_app: Callable[..., Starlette]) -> None:
    with pytest.raises(ValueError, match="body_timeout_seconds must be > 0"):
        make_app(body_timeout_seconds=0)


# -- 422 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"amount"', "must be a JSON object"),
        (b"{}", "send amount or usage: exactly one"),
        (b'{"amount": null}', "send amount or usage: exactly one"),
        (b'{"amount": true}', "amount must be an integer"),
        (b'{"amount": 1.0}', "amount must be an integer"),
        (b'{"amount": "5"}', "amount must be an integer"),
        (b'{"amount": 0}', "between 1 and"),
        (b'{"amount": -3}', "between 1 and"),
        (b'{"amount": 1000000000001}', "between 1 and"),
        (b'{"amount": 1, "idempotency_key": 7}', "idempotency_key must be a string"),
        (b'{"amount": 1, "idempotency_key": ""}', "idempotency_key must be 1 to 255"),
        (b'{"amount": 1, "user_id": "bob"}', "unknown field(s): user_id"),
    ],
)
def test_a_malformed_consume_body_is_422(client: TestClient, body: bytes, message: str) -> None:
    response = client.post("/api/tokens/consume", headers=ALICE, content=body)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid request"
    assert message in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"plan": 3}, "plan must be a string"),
        ({"plan": "basic", "reset_used": "yes"}, "reset_used must be a boolean"),
        ({"plan": "basic", "reset_used": 1}, "reset_used must be a boolean"),
        ({"reset_used": False}, "plan is required"),
    ],
)
def test_a_malformed_set_plan_body_is_422(
    client: TestClient, body: dict[str, object], message: str
) -> None:
    response = client.post("/api/tokens/set-plan", headers=ALICE, json=body)

    assert (response.status_code, response.json()["message"]) == (422, message)


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "201"}, {"limit": "ten"}, {"cursor": "abc"}, {"page": "2"}],
)
def test_a_bad_ledger_page_request_is_422(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/api/tokens/ledger", headers=ALICE, params=params)

    assert response.status_code == 422


def test_a_grant_of_a_string_amount_is_422(client: TestClient) -> None:
    response = client.post("/api/admin/accounts/bob/grant", headers=ROOT, json={"amount": "9"})

    assert response.status_code == 422


# -- 500, 503 ---------------------------------------------------------------------


class FailingStore(InMemoryStore):
    """Loads fail with ``error``: a fake with one injected failure."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def load(self, subject: str) -> Account | None:
        raise self.error


def test_an_unexpected_error_is_a_json_500_with_a_logged_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = TestClient(
        build_app(FailingStore(RuntimeError("disk on fire"))), raise_server_exceptions=False
    )

    with caplog.at_level(logging.ERROR, logger="tokenplans_adapters.http"):
        response = client.get("/api/tokens/usage", headers=ALICE)

    body = response.json()
    assert (response.status_code, body["error"]) == (500, "internal error")
    assert response.headers["X-Request-ID"] == body["request_id"]
    assert "disk on fire" not in response.text
    assert "Traceback" not in response.text
    [record] = [r for r in caplog.records if body["request_id"] in r.getMessage()]
    assert record.exc_info is not None
    assert "disk on fire" in str(record.exc_info[1])


def test_a_500_answers_a_browser_with_cors_headers() -> None:
    client = TestClient(
        build_app(FailingStore(RuntimeError("boom"))), raise_server_exceptions=False
    )

    response = client.get("/api/tokens/usage", headers={**ALICE, "Origin": "http://localhost:3000"})

    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_an_unreachable_database_is_503(caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(build_app(FailingStore(StorageUnavailableError("connection refused"))))

    response = client.get("/api/tokens/usage", headers=ALICE)

    assert (response.status_code, response.json()) == (503, {"error": "database unavailable"})
    assert response.headers["Retry-After"] == "1"


def test_a_contended_account_is_503_account_busy() -> None:
    client = TestClient(build_app(FailingStore(AccountBusyError("too contended"))))

    response = client.post("/api/tokens/consume", headers=ALICE, json={"amount": 1})

    assert (response.status_code, response.json()["error"]) == (503, "account busy")


def test_readiness_is_503_when_the_probe_says_the_database_is_down() -> None:
    def probe() -> None:
        raise StorageUnavailableError("no route to host")

    client = TestClient(build_app(InMemoryStore(), readiness=probe))

    response = client.get("/api/health/ready")

    assert response.status_code == 503
    assert response.json()["error"] == "database unavailable"
    assert client.get("/api/health").status_code == 200


def test_readiness_is_503_when_the_default_probe_cannot_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = TestClient(build_app(FailingStore(OSError("socket closed"))))

    with caplog.at_level(logging.ERROR, logger="tokenplans_adapters.http"):
        response = client.get("/api/health/ready")

    assert (response.status_code, response.json()["database"]) == (503, "down")


# -- the payment errors, for routes an extension adds --------------------------------


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (
            PaymentError("bad_signature", "the signature does not match"),
            400,
            {
                "error": "payment refused",
                "reason": "bad_signature",
                "message": "the signature does not match",
            },
        ),
        (
            PaymentNotFoundError("order_9"),
            404,
            {"error": "payment not found", "order_id": "order_9"},
        ),
        (
            GatewayError("razorpay said: key rzp_live_123 disabled"),
            502,
            {"error": "payment gateway unavailable"},
        ),
    ],
)
def test_payment_errors_from_an_extra_route_map_to_json(
    error: Exception, status: int, body: dict[str, object]
) -> None:
    async def pay(_request: Request) -> Response:
        raise error

    client = TestClient(build_app(extra_routes=[Route("/api/payments/x", pay, methods=["POST"])]))

    response = client.post("/api/payments/x", headers=ALICE)

    assert (response.status_code, response.json()) == (status, body)
