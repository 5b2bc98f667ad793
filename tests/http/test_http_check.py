"""``POST /api/tokens/check`` and its admin variant, through the ASGI app: 200 whether
allowed or not, nothing written; features in the usage answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from http_support import ALICE, BOB, ROOT, identity
from starlette.testclient import TestClient

from tokenplans import PlanCatalog, PriceBook, TokenService
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.http import create_app

CATALOG = PlanCatalog.from_mapping(
    {
        "basic": {"price": 0, "tokens": 1000, "features": ["export"]},
        "pro": {"price": 900, "tokens": 50_000, "features": ["gpt-4o", "export"]},
    }
)
BOOK = PriceBook.from_mapping(
    {"version": "t1", "models": {"gpt-4o": {"input": 1_000_000, "output": 4_000_000}}}
)
JANUARY_END = "2026-02-01T00:00:00Z"


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def client(store: InMemoryStore) -> Iterator[TestClient]:
    service = TokenService(store, CATALOG, SettableClock(), pricer=BOOK)
    with TestClient(create_app(service, identity()), raise_server_exceptions=False) as test:
        yield test


def _written(store: InMemoryStore, subject: str) -> tuple[Any, int]:
    return store.load(subject), len(store.history(subject, limit=200))


def test_a_check_answers_200_allowed_or_not_and_writes_nothing(
    client: TestClient, store: InMemoryStore
) -> None:
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 400})
    before = _written(store, "alice")

    allowed = client.post("/api/tokens/check", headers=ALICE, json={"amount": 600})
    refused = client.post("/api/tokens/check", headers=ALICE, json={"amount": 601})

    assert (allowed.status_code, allowed.json()) == (
        200,
        {
            "allowed": True,
            "reason": "ok",
            "requested": 600,
            "remaining": 600,
            "resets_at": JANUARY_END,
            "plan": "basic",
        },
    )
    assert refused.status_code == 200
    assert refused.json()["allowed"] is False
    assert refused.json()["reason"] == "insufficient_credits"
    assert _written(store, "alice") == before
    # and the consume it predicted is refused the same way
    assert (
        client.post("/api/tokens/consume", headers=ALICE, json={"amount": 601}).status_code == 402
    )


def test_a_never_seen_caller_is_checked_without_an_account_being_made(
    client: TestClient, store: InMemoryStore
) -> None:
    answer = client.post("/api/tokens/check", headers=BOB, json={"feature": "export"})

    assert answer.json() == {
        "allowed": True,
        "reason": "ok",
        "remaining": 1000,
        "resets_at": JANUARY_END,
        "plan": "basic",
    }
    assert store.load("bob") is None


def test_an_estimate_is_priced_like_a_reserve(client: TestClient) -> None:
    estimate = {"model": "gpt-4o", "input_tokens": 100, "max_output_tokens": 200}

    checked = client.post("/api/tokens/check", headers=ALICE, json={"estimate": estimate})
    held = client.post("/api/tokens/holds", headers=ALICE, json={"estimate": estimate})

    assert checked.json()["requested"] == held.json()["amount"] == 900
    unknown = client.post(
        "/api/tokens/check", headers=ALICE, json={"estimate": {**estimate, "model": "nope"}}
    )
    assert (unknown.status_code, unknown.json()["error"]) == (400, "unknown model")


def test_a_feature_not_in_the_plan_is_a_200_that_says_so(client: TestClient) -> None:
    answer = client.post("/api/tokens/check", headers=ALICE, json={"feature": "gpt-4o"})
    client.post("/api/admin/accounts/alice/set-plan", headers=ROOT, json={"plan": "pro"})
    after = client.post("/api/tokens/check", headers=ALICE, json={"feature": "gpt-4o"})

    assert (answer.status_code, answer.json()["reason"], answer.json()["allowed"]) == (
        200,
        "feature_not_in_plan",
        False,
    )
    assert "requested" not in answer.json()
    assert (after.json()["allowed"], after.json()["plan"]) == (True, "pro")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"amount": 1, "feature": "export"},
        {"amount": 0},
        {"amount": "5"},
        {"amount": True},
        {"feature": ""},
        {"feature": "a b"},
        {"feature": 7},
        {"amount": 1, "subject": "bob"},
        [],
    ],
)
def test_a_bad_check_is_a_422_and_writes_nothing(
    client: TestClient, store: InMemoryStore, body: Any
) -> None:
    answer = client.post("/api/tokens/check", headers=ALICE, json=body)

    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid request"
    assert store.load("alice") is None


def test_the_admin_variant_checks_any_account_and_users_cannot_use_it(
    client: TestClient, store: InMemoryStore
) -> None:
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 990})

    by_admin = client.post("/api/admin/accounts/alice/check", headers=ROOT, json={"amount": 11})
    by_user = client.post("/api/admin/accounts/alice/check", headers=BOB, json={"amount": 1})
    unknown = client.post("/api/admin/accounts/carol/check", headers=ROOT, json={"amount": 1})

    assert (by_admin.status_code, by_admin.json()["reason"], by_admin.json()["remaining"]) == (
        200,
        "insufficient_credits",
        10,
    )
    assert by_user.status_code == 403
    assert unknown.json()["allowed"] is True
    assert store.load("carol") is None


def test_the_usage_answer_carries_the_plans_features(client: TestClient) -> None:
    mine = client.get("/api/tokens/usage", headers=ALICE).json()
    client.post("/api/admin/accounts/alice/set-plan", headers=ROOT, json={"plan": "pro"})
    theirs = client.get("/api/admin/accounts/alice", headers=ROOT).json()

    assert mine["features"] == ["export"]
    assert theirs["features"] == ["gpt-4o", "export"]
    plans = client.get("/api/plans").json()
    assert [plan["features"] for plan in plans["plans"]] == [["export"], ["gpt-4o", "export"]]


def test_the_check_routes_are_documented(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    for path in ("/api/tokens/check", "/api/admin/accounts/{subject}/check"):
        post = document["paths"][path]["post"]
        assert post["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/CheckResult"
        }
    schemas = document["components"]["schemas"]
    assert set(schemas["CheckRequest"]["properties"]) == {"amount", "estimate", "feature"}
    assert schemas["CheckResult"]["properties"]["reason"]["enum"] == [
        "ok",
        "insufficient_credits",
        "feature_not_in_plan",
    ]
    assert "features" in schemas["UsageAnswer"]["required"]
