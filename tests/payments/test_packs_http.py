"""Packs over HTTP: the catalog's packs listed without a token, an order for a pack, its
payment confirmed into a lot the usage answer shows, and the requests refused (none or
both of plan and pack, an unknown pack) without storing anything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient
from test_packs import CATALOG

from tokenplans import AccountStore, PaymentService, PlanCatalog, Principal, TokenService
from tokenplans.testing import SettableClock, StaticIdentity
from tokenplans_adapters.http import create_app
from tokenplans_adapters.razorpay import OfflineGateway

ALICE = {"Authorization": "Bearer alice-token"}


@pytest.fixture
def tokens(store: AccountStore, clock: SettableClock) -> TokenService:
    return TokenService(store, PlanCatalog.from_mapping(CATALOG), clock)


@pytest.fixture
def client(
    tokens: TokenService, payments: PaymentService, alice: Principal
) -> Iterator[TestClient]:
    app = create_app(tokens, StaticIdentity({"alice-token": alice}), payments=payments)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_packs_are_listed_without_a_token(client: TestClient) -> None:
    answer = client.get("/api/packs")

    assert answer.status_code == 200
    assert answer.json() == {
        "packs": [
            {
                "id": "topup",
                "name": "Top-up",
                "price": 500,
                "currency": "INR",
                "credits": 5000,
                "expires_after_days": 30,
                "priority": 0,
            },
            {
                "id": "forever",
                "name": "Forever",
                "price": 2000,
                "currency": "INR",
                "credits": 30000,
                "expires_after_days": None,
                "priority": 5,
            },
        ]
    }


def test_a_pack_bought_through_the_api_shows_as_a_lot(
    client: TestClient, gateway: OfflineGateway
) -> None:
    order = client.post("/api/payments/order", json={"pack": "topup"}, headers=ALICE)
    assert order.status_code == 200
    fields = order.json()
    assert (fields["pack"], fields["amount"]) == ("topup", 500)
    assert fields["description"] == "Top-up pack"
    assert "plan" not in fields

    proof = gateway.checkout_proof(fields["order_id"], gateway.new_payment_id())
    paid = client.post("/api/payments/verify", json=proof, headers=ALICE)

    assert paid.status_code == 200
    body = paid.json()
    assert (body["applied"], body["token_quota"], body["remaining"]) == (True, 6000, 6000)
    assert (body["payment"]["plan"], body["payment"]["pack"]) == (None, "topup")
    lots = client.get("/api/tokens/usage", headers=ALICE).json()["lots"]
    assert [(lot["lot_id"], lot["source"], lot["amount"]) for lot in lots] == [
        ("plan", "plan", 1000),
        (fields["payment_id"], "purchased", 5000),
    ]
    listed = client.get("/api/payments", headers=ALICE).json()["payments"]
    assert [(p["pack"], p["status"]) for p in listed] == [("topup", "paid")]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({}, 422, "invalid request"),
        ({"plan": "premium", "pack": "topup"}, 422, "invalid request"),
        ({"plan": None, "pack": None}, 422, "invalid request"),
        ({"pack": 5}, 422, "invalid request"),
        ({"pack": "platinum"}, 400, "invalid pack"),
    ],
)
def test_an_order_without_exactly_one_known_item_is_refused_and_stores_nothing(
    client: TestClient, body: dict[str, object], status: int, error: str
) -> None:
    answer = client.post("/api/payments/order", json=body, headers=ALICE)

    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert client.get("/api/payments", headers=ALICE).json() == {"payments": []}


def test_the_document_describes_the_packs_and_the_pack_order(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    validate(document)

    assert "/api/packs" in document["paths"]
    order = document["components"]["schemas"]["OrderRequest"]["properties"]
    assert order["pack"]["anyOf"][0]["enum"] == ["topup", "forever"]
