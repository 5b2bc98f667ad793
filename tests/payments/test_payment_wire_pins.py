"""The answers the original frontend (and Razorpay) read, pinned byte for byte: create an
order, verify it, and a webhook delivery, on today's paths through the offline gateway.

Payments are now owned by their provider (``/api/payments/{provider}/...``); these paths
stay as aliases of the default provider's, and must not change by a byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from string import Template

import pytest
from payments_support import payment_service
from starlette.testclient import TestClient

from tokenplans import PlanCatalog, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock, StaticIdentity
from tokenplans_adapters.http import create_app
from tokenplans_adapters.razorpay import OfflineGateway

ALICE = {"Authorization": "Bearer alice-token"}
PAYMENT_ID = "tp_0123456789abcdef01234567"
GATEWAY_PAYMENT_ID = "pay_PinnedPayment01"


@pytest.fixture
def gateway() -> OfflineGateway:
    return OfflineGateway("pinned-secret")


@pytest.fixture
def pinned(gateway: OfflineGateway) -> Iterator[TestClient]:
    tokens = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())
    payments = payment_service(tokens, gateway, new_id=lambda: PAYMENT_ID)
    app = create_app(tokens, StaticIdentity({"alice-token": Principal("alice")}), payments=payments)
    with TestClient(app) as client:
        yield client


def _order(client: TestClient) -> tuple[str, bytes]:
    answer = client.post("/api/payments/order", json={"plan": "premium"}, headers=ALICE)
    assert answer.status_code == 200
    order_id: str = answer.json()["order_id"]
    return order_id, answer.content


def test_the_create_order_answer_is_pinned(pinned: TestClient) -> None:
    order_id, content = _order(pinned)

    assert (
        content
        == Template(
            '{"order_id":"$order","amount":9900,"currency":"INR","key_id":"rzp_offline",'
            '"payment_id":"$payment","receipt":"$payment","plan":"premium","name":"Premium",'
            '"description":"Premium plan","notes":{"subject":"alice","plan":"premium"},'
            '"status":"created"}'
        )
        .substitute(order=order_id, payment=PAYMENT_ID)
        .encode()
    )


def test_the_verify_answer_is_pinned(pinned: TestClient, gateway: OfflineGateway) -> None:
    order_id, _ = _order(pinned)
    proof = gateway.checkout_proof(order_id, GATEWAY_PAYMENT_ID)
    assert list(proof) == ["razorpay_order_id", "razorpay_payment_id", "razorpay_signature"]

    answer = pinned.post("/api/payments/verify", json=proof, headers=ALICE)

    assert answer.status_code == 200
    assert (
        answer.content
        == Template(
            '{"status":"ok","message":"upgraded to premium with carry-over","applied":true,'
            '"plan":"premium","token_quota":51000,"token_used":0,"remaining":51000,'
            '"plan_end_at":"2026-02-14T12:00:00Z","period_start":"2026-01-15T12:00:00Z",'
            '"period_end":"2026-02-14T12:00:00Z","token_held":0,"subject":"alice",'
            '"payment":{"payment_id":"$payment","order_id":"$order","razorpay_payment_id":"$paid",'
            '"subject":"alice","plan":"premium","amount":9900,"currency":"INR",'
            '"status":"paid","created_at":"2026-01-15T12:00:00Z",'
            '"updated_at":"2026-01-15T12:00:00Z"}}'
        )
        .substitute(payment=PAYMENT_ID, order=order_id, paid=GATEWAY_PAYMENT_ID)
        .encode()
    )


@pytest.mark.parametrize(
    ("event", "status"),
    [("payment.captured", "applied"), ("payment.failed", "failed"), ("order.paid", "applied")],
)
def test_the_webhook_answer_is_pinned(
    pinned: TestClient, gateway: OfflineGateway, event: str, status: str
) -> None:
    order_id, _ = _order(pinned)
    body, headers = gateway.webhook_delivery(
        event, order_id=order_id, payment_id=GATEWAY_PAYMENT_ID
    )

    answer = pinned.post(
        "/api/payments/webhook",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )

    assert answer.status_code == 200
    assert (
        answer.content
        == json.dumps(
            {"status": status, "event": event, "order_id": order_id}, separators=(",", ":")
        ).encode()
    )


def test_an_unknown_event_and_a_bad_signature_are_pinned(
    pinned: TestClient, gateway: OfflineGateway
) -> None:
    body = json.dumps({"entity": "event", "event": "refund.created"}).encode()
    ignored = pinned.post(
        "/api/payments/webhook", content=body, headers=gateway.webhook_headers(body)
    )
    refused = pinned.post(
        "/api/payments/webhook", content=body, headers={"X-Razorpay-Signature": "0" * 64}
    )

    assert (ignored.status_code, ignored.content) == (
        200,
        b'{"status":"ignored","event":"refund.created","order_id":null}',
    )
    assert refused.status_code == 400
    assert json.loads(refused.content) == {
        "error": "payment refused",
        "reason": "bad_signature",
        "message": "the webhook signature does not match",
    }
