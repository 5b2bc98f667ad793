"""The payment endpoints through Starlette's TestClient, on an app built per test with
the offline gateway: the whole browser flow, ownership, and webhooks that are refused
(400, never a 500) without changing anything."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from openapi_spec_validator import validate
from payments_support import event_body, payment_entries, payment_service
from starlette.testclient import TestClient

from tokenplans import MAX_OPEN_ORDERS, PaymentService, PlanCatalog, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock, StaticIdentity
from tokenplans_adapters.http import create_app
from tokenplans_adapters.razorpay import OfflineGateway


@pytest.fixture
def client(
    tokens: TokenService, payments: PaymentService, alice: Principal, bob: Principal
) -> Iterator[TestClient]:
    identity = StaticIdentity({"alice-token": alice, "bob-token": bob})
    app = create_app(tokens, identity, payments=payments)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


def checkout_fields(client: TestClient, gateway: OfflineGateway, order_id: str) -> dict[str, str]:
    """What Razorpay Checkout's success handler receives, signed by the offline gateway."""
    payment_id = gateway.new_payment_id()
    return {
        "razorpay_order_id": order_id,
        "razorpay_payment_id": payment_id,
        "razorpay_signature": gateway.sign_payment(order_id, payment_id),
    }


def test_a_basic_user_with_700_used_buys_premium_through_the_api(
    client: TestClient, gateway: OfflineGateway
) -> None:
    client.post("/api/tokens/consume", json={"amount": 700}, headers=ALICE)

    order = client.post("/api/payments/order", json={"plan": "premium"}, headers=ALICE)
    assert order.status_code == 200
    checkout = order.json()
    assert (checkout["amount"], checkout["currency"], checkout["key_id"]) == (
        9900,
        "INR",
        "rzp_offline",
    )
    assert checkout["order_id"].startswith("order_")
    assert checkout["receipt"] == checkout["payment_id"]
    assert checkout["plan"] == "premium"

    verified = client.post(
        "/api/payments/verify",
        json=checkout_fields(client, gateway, checkout["order_id"]),
        headers=ALICE,
    )

    assert verified.status_code == 200
    result = verified.json()
    assert (result["plan"], result["token_quota"], result["token_used"]) == ("premium", 50300, 0)
    assert (result["applied"], result["message"]) == (True, "upgraded to premium with carry-over")
    assert result["payment"]["status"] == "paid"
    usage = client.get("/api/tokens/usage", headers=ALICE).json()
    assert (usage["plan"], usage["token_quota"], usage["remaining"]) == ("premium", 50300, 50300)
    ledger = client.get("/api/tokens/ledger", headers=ALICE).json()["entries"]
    assert ledger[0]["payment_id"] == checkout["payment_id"]


def test_verifying_twice_returns_the_same_usage_and_applies_once(
    client: TestClient, gateway: OfflineGateway, tokens: TokenService, alice: Principal
) -> None:
    order = client.post("/api/payments/order", json={"plan": "standard"}, headers=ALICE).json()
    fields = checkout_fields(client, gateway, order["order_id"])

    first = client.post("/api/payments/verify", json=fields, headers=ALICE).json()
    second = client.post("/api/payments/verify", json=fields, headers=ALICE).json()

    assert (first["applied"], second["applied"]) == (True, False)
    assert second["token_quota"] == first["token_quota"] == 11000
    assert second["payment"] == first["payment"]
    assert len(payment_entries(tokens.store, alice.subject)) == 1


@pytest.mark.parametrize(
    ("plan", "status", "error"),
    [
        ("basic", 400, {"error": "payment refused", "reason": "free_plan"}),
        ("platinum", 400, {"error": "invalid plan", "plan": "platinum"}),
    ],
)
def test_an_order_the_rules_refuse_is_a_400_and_stores_nothing(
    client: TestClient, plan: str, status: int, error: dict[str, str]
) -> None:
    answer = client.post("/api/payments/order", json={"plan": plan}, headers=ALICE)

    assert answer.status_code == status
    assert error.items() <= answer.json().items()
    assert client.get("/api/payments", headers=ALICE).json() == {"payments": []}


@pytest.mark.parametrize(
    "body",
    [{}, {"plan": 3}, {"plan": "premium", "amount": 1}, [], "premium"],
    ids=["no plan", "plan not text", "a client-chosen amount", "an array", "a string"],
)
def test_a_malformed_order_body_is_a_422(client: TestClient, body: object) -> None:
    answer = client.post("/api/payments/order", json=body, headers=ALICE)

    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid request"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/payments/order"),
        ("POST", "/api/payments/verify"),
        ("GET", "/api/payments"),
    ],
)
def test_the_user_endpoints_need_a_bearer_token(client: TestClient, method: str, path: str) -> None:
    answer = client.request(method, path, json={"plan": "premium"})

    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_a_bad_signature_is_a_400_and_nothing_changes(
    client: TestClient, gateway: OfflineGateway
) -> None:
    order = client.post("/api/payments/order", json={"plan": "premium"}, headers=ALICE).json()
    fields = checkout_fields(client, gateway, order["order_id"])
    fields["razorpay_signature"] = "0" * 64

    answer = client.post("/api/payments/verify", json=fields, headers=ALICE)

    assert answer.status_code == 400
    assert answer.json()["reason"] == "bad_signature"
    assert client.get("/api/tokens/usage", headers=ALICE).json()["plan"] == "basic"
    [payment] = client.get("/api/payments", headers=ALICE).json()["payments"]
    assert payment["status"] == "created"


def test_bob_cannot_verify_or_list_alices_order(
    client: TestClient, gateway: OfflineGateway
) -> None:
    order = client.post("/api/payments/order", json={"plan": "premium"}, headers=ALICE).json()

    answer = client.post(
        "/api/payments/verify",
        json=checkout_fields(client, gateway, order["order_id"]),
        headers=BOB,
    )

    assert answer.status_code == 404
    assert answer.json()["error"] == "payment not found"
    assert client.get("/api/payments", headers=BOB).json() == {"payments": []}
    assert client.get("/api/tokens/usage", headers=ALICE).json()["plan"] == "basic"
    assert client.get("/api/tokens/usage", headers=BOB).json()["plan"] == "basic"


def test_the_payments_list_shows_the_callers_payments_newest_first(
    client: TestClient, gateway: OfflineGateway, clock: object
) -> None:
    first = client.post("/api/payments/order", json={"plan": "standard"}, headers=ALICE).json()
    clock.advance(minutes=1)  # type: ignore[attr-defined]
    second = client.post("/api/payments/order", json={"plan": "premium"}, headers=ALICE).json()

    listed = client.get("/api/payments", headers=ALICE).json()["payments"]

    assert [p["order_id"] for p in listed] == [second["order_id"], first["order_id"]]
    assert listed[0]["amount"] == 9900
    assert listed[0]["created_at"].endswith("Z")


# -- webhook ------------------------------------------------------------------------


@pytest.fixture
def order(client: TestClient, tokens: TokenService, alice: Principal) -> dict[str, object]:
    client.post("/api/tokens/consume", json={"amount": 700}, headers=ALICE)
    answer: dict[str, object] = client.post(
        "/api/payments/order", json={"plan": "premium"}, headers=ALICE
    ).json()
    return answer


def _body(tokens: TokenService, order: dict[str, object], event: str, pay_id: str) -> bytes:
    payment = tokens.store.find_payment(str(order["order_id"]))
    assert payment is not None
    return event_body(event, payment, pay_id)


def post_webhook(
    client: TestClient,
    body: bytes,
    signature: str | bytes | None,
    event_id: str | None = None,
) -> object:
    headers: dict[str, str | bytes] = {
        "Content-Type": "application/json",
        "X-Razorpay-Event-Id": event_id or "evt_" + uuid.uuid4().hex[:14],
    }
    if signature is not None:
        headers["X-Razorpay-Signature"] = signature
    return client.post("/api/payments/webhook", content=body, headers=headers)


def test_a_captured_payment_webhook_applies_the_plan_without_a_bearer_token(
    client: TestClient, gateway: OfflineGateway, tokens: TokenService, order: dict[str, object]
) -> None:
    body = _body(tokens, order, "payment.captured", "pay_A")

    answer = post_webhook(client, body, gateway.sign_webhook(body))

    assert answer.status_code == 200  # type: ignore[attr-defined]
    assert answer.json() == {  # type: ignore[attr-defined]
        "status": "applied",
        "event": "payment.captured",
        "order_id": order["order_id"],
    }
    usage = client.get("/api/tokens/usage", headers=ALICE).json()
    assert (usage["plan"], usage["token_quota"]) == ("premium", 50300)


def test_a_replayed_webhook_is_a_200_and_applies_nothing_more(
    client: TestClient,
    gateway: OfflineGateway,
    tokens: TokenService,
    order: dict[str, object],
    alice: Principal,
) -> None:
    body = _body(tokens, order, "order.paid", "pay_A")
    other = _body(tokens, order, "payment.captured", "pay_A")
    same = "evt_" + uuid.uuid4().hex[:14]  # unique: the test databases are shared

    statuses = [
        post_webhook(client, body, gateway.sign_webhook(body), same).json()["status"],  # type: ignore[attr-defined]
        post_webhook(client, body, gateway.sign_webhook(body), same).json()["status"],  # type: ignore[attr-defined]
        post_webhook(client, other, gateway.sign_webhook(other)).json()["status"],  # type: ignore[attr-defined]
    ]

    assert statuses == ["applied", "duplicate", "already_applied"]
    assert len(payment_entries(tokens.store, alice.subject)) == 1
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_quota"] == 50300


def test_a_failure_webhook_after_the_payment_is_paid_leaves_it_paid(
    client: TestClient, gateway: OfflineGateway, tokens: TokenService, order: dict[str, object]
) -> None:
    paid = _body(tokens, order, "order.paid", "pay_A")
    failed = _body(tokens, order, "payment.failed", "pay_A")
    post_webhook(client, paid, gateway.sign_webhook(paid))

    answer = post_webhook(client, failed, gateway.sign_webhook(failed))

    assert answer.status_code == 200  # type: ignore[attr-defined]
    [payment] = client.get("/api/payments", headers=ALICE).json()["payments"]
    assert payment["status"] == "paid"


def test_an_unknown_event_is_a_200_and_ignored(
    client: TestClient, gateway: OfflineGateway, tokens: TokenService, order: dict[str, object]
) -> None:
    body = _body(tokens, order, "refund.processed", "pay_A")

    answer = post_webhook(client, body, gateway.sign_webhook(body))

    assert answer.status_code == 200  # type: ignore[attr-defined]
    assert answer.json()["status"] == "ignored"  # type: ignore[attr-defined]
    [payment] = client.get("/api/payments", headers=ALICE).json()["payments"]
    assert payment["status"] == "created"


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda body, sig: (body, "0" * 64), id="bad signature"),
        pytest.param(lambda body, sig: (body, None), id="missing signature header"),
        pytest.param(lambda body, sig: (body, ""), id="empty signature header"),
        pytest.param(lambda body, sig: (body, "é".encode("latin-1") * 64), id="non-ascii header"),
        pytest.param(lambda body, sig: (body, b"\xff\xfe" + sig[2:].encode()), id="raw bytes"),
        pytest.param(
            lambda body, sig: (json.dumps(json.loads(body)).encode(), sig), id="re-serialised"
        ),
        pytest.param(lambda body, sig: (body + b"\n", sig), id="extra newline"),
        pytest.param(lambda body, sig: (b"", sig), id="empty body"),
    ],
)
def test_a_webhook_failing_its_signature_is_a_400_and_nothing_changes(
    client: TestClient,
    gateway: OfflineGateway,
    tokens: TokenService,
    order: dict[str, object],
    spoil: object,
) -> None:
    body = _body(tokens, order, "payment.captured", "pay_A")
    spoilt, signature = spoil(body, gateway.sign_webhook(body))  # type: ignore[operator]
    event_id = "evt_" + uuid.uuid4().hex[:14]

    answer = post_webhook(client, spoilt, signature, event_id)

    assert answer.status_code == 400  # type: ignore[attr-defined]
    assert answer.json() == {  # type: ignore[attr-defined]
        "error": "payment refused",
        "reason": "bad_signature",
        "message": "the webhook signature does not match",
    }
    [payment] = client.get("/api/payments", headers=ALICE).json()["payments"]
    assert payment["status"] == "created"
    assert client.get("/api/tokens/usage", headers=ALICE).json()["plan"] == "basic"
    assert not tokens.store.event_seen(event_id)


def test_a_signed_webhook_that_is_not_an_event_is_a_400(
    client: TestClient, gateway: OfflineGateway
) -> None:
    body = b"definitely not json"

    answer = post_webhook(client, body, gateway.sign_webhook(body))

    assert answer.status_code == 400  # type: ignore[attr-defined]
    assert answer.json()["reason"] == "malformed_event"  # type: ignore[attr-defined]


def test_a_non_ascii_event_id_is_a_422_not_a_500(
    client: TestClient, gateway: OfflineGateway, tokens: TokenService, order: dict[str, object]
) -> None:
    body = _body(tokens, order, "payment.captured", "pay_A")
    headers = {
        "X-Razorpay-Signature": gateway.sign_webhook(body),
        "X-Razorpay-Event-Id": "évt".encode("latin-1"),
    }

    answer = client.post("/api/payments/webhook", content=body, headers=headers)

    assert answer.status_code == 422
    [payment] = client.get("/api/payments", headers=ALICE).json()["payments"]
    assert payment["status"] == "created"


# -- crafted bodies and media types: a 4xx, never a 500, and nothing changes --------

CRAFTED_BODIES = [
    pytest.param(b'{"plan": 1' + b"0" * 5000 + b"}", "more than 100 digits", id="5001 digits"),
    pytest.param(b"[" * 1000 + b"]" * 1000, "nests deeper than 32", id="1000 arrays in 2 KB"),
    pytest.param(b'{"plan": ' + b'{"a":' * 999 + b"1" + b"}" * 1000, "32", id="deep field"),
]


@pytest.mark.parametrize("path", ["/api/payments/order", "/api/payments/verify"])
@pytest.mark.parametrize(("body", "message"), CRAFTED_BODIES)
def test_a_crafted_payment_body_is_a_422(
    client: TestClient, path: str, body: bytes, message: str
) -> None:
    answer = client.post(path, content=body, headers={**ALICE, "Content-Type": "application/json"})

    assert answer.status_code == 422
    assert message in answer.json()["message"]
    assert client.get("/api/payments", headers=ALICE).json() == {"payments": []}


@pytest.mark.parametrize("crafted", [pytest.param(p.values, id=p.id) for p in CRAFTED_BODIES])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_crafted_webhook_body_is_a_422_signed_or_not(
    client: TestClient,
    gateway: OfflineGateway,
    order: dict[str, object],
    crafted: tuple[bytes, str],
    signed: bool,
) -> None:
    body, message = crafted
    event_id = "evt_" + uuid.uuid4().hex[:14]

    answer = post_webhook(client, body, gateway.sign_webhook(body) if signed else None, event_id)

    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert message in answer.json()["message"]  # type: ignore[attr-defined]
    [payment] = client.get("/api/payments", headers=ALICE).json()["payments"]
    assert payment["status"] == "created"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/payments/order", b'{"plan": "premium"}'),
        ("/api/payments/verify", b"{}"),
        ("/api/payments/webhook", b"{}"),
    ],
)
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_a_payment_body_that_is_not_declared_json_is_a_415(
    client: TestClient, path: str, body: bytes, content_type: str
) -> None:
    answer = client.post(path, content=body, headers={**ALICE, "Content-Type": content_type})

    assert answer.status_code == 415
    assert answer.json()["error"] == "unsupported media type"
    assert client.get("/api/payments", headers=ALICE).json() == {"payments": []}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", None])
def test_a_webhook_declared_json_with_a_charset_or_undeclared_is_applied(
    client: TestClient,
    gateway: OfflineGateway,
    tokens: TokenService,
    order: dict[str, object],
    content_type: str | None,
) -> None:
    body = _body(tokens, order, "payment.captured", "pay_A")
    headers = {"X-Razorpay-Signature": gateway.sign_webhook(body)}
    if content_type is not None:
        headers["Content-Type"] = content_type

    answer = client.post("/api/payments/webhook", content=body, headers=headers)

    assert answer.json()["status"] == "applied"


# -- the app's document and wiring -------------------------------------------------


def test_the_openapi_document_describes_the_payment_endpoints_and_is_valid(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()

    validate(document)
    assert {"post"} <= set(document["paths"]["/api/payments/order"])
    assert {"post"} <= set(document["paths"]["/api/payments/verify"])
    assert "security" not in document["paths"]["/api/payments/webhook"]["post"]
    assert {"get"} <= set(document["paths"]["/api/payments"])
    for action in ("order", "verify", "webhook"):
        assert {"post"} <= set(document["paths"][f"/api/payments/razorpay/{action}"])
    assert {"Payment", "Order", "RazorpayOrder", "RazorpayVerifyRequest"} <= set(
        document["components"]["schemas"]
    )


def test_without_a_payment_service_the_payment_routes_do_not_exist(
    tokens: TokenService, alice: Principal
) -> None:
    app = create_app(tokens, StaticIdentity({"alice-token": alice}))
    with TestClient(app) as plain:
        answer = plain.post("/api/payments/order", json={"plan": "premium"}, headers=ALICE)
        document = plain.get("/openapi.json").json()

    assert answer.status_code == 404
    assert "/api/payments/order" not in document["paths"]
    validate(document)


def test_a_sixth_open_order_is_a_429_with_retry_after_and_stores_nothing(
    alice: Principal, gateway: OfflineGateway
) -> None:
    """Six paid plans, an order for each a minute apart: the sixth is refused until the
    oldest order leaves the one-hour window, 55 minutes later."""
    plans: dict[str, dict[str, object]] = {"free": {"price": 0, "tokens": 100}}
    plans |= {
        f"p{n}": {"price": 100 * n, "tokens": 1000 * n, "duration_days": 30} for n in range(1, 7)
    }
    clock = SettableClock()
    tokens = TokenService(InMemoryStore(), PlanCatalog.from_mapping(plans), clock)
    app = create_app(
        tokens, StaticIdentity({"alice-token": alice}), payments=payment_service(tokens, gateway)
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        for n in range(1, MAX_OPEN_ORDERS + 1):
            made = client.post("/api/payments/order", json={"plan": f"p{n}"}, headers=ALICE)
            assert made.status_code == 200
            clock.advance(timedelta(minutes=1))

        refused = client.post("/api/payments/order", json={"plan": "p6"}, headers=ALICE)

        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers["Retry-After"] == str(55 * 60)
        body = refused.json()
        assert (body["error"], body["reason"]) == ("too many open orders", "too_many_open_orders")
        assert body["message"]
        listed = client.get("/api/payments", headers=ALICE).json()["payments"]
        assert len(listed) == MAX_OPEN_ORDERS
        assert "p6" not in {p["plan"] for p in listed}
        documented = client.get("/openapi.json").json()
        assert "429" in documented["paths"]["/api/payments/order"]["post"]["responses"]
        clock.advance(timedelta(minutes=55))
        assert client.post("/api/payments/order", json={"plan": "p6"}, headers=ALICE).is_success
