"""Who may do what (docs/quotas.md: "Who may do what"), through every HTTP route."""

from __future__ import annotations

import pytest
from http_support import ALICE, BOB, ROOT
from starlette.testclient import TestClient

from tokenplans.testing import InMemoryStore

#: Every route that names another subject, with a body that would succeed for an admin.
ADMIN_ROUTES = [
    ("GET", "/api/admin/accounts/bob", None),
    ("POST", "/api/admin/accounts/bob/set-plan", {"plan": "premium"}),
    ("POST", "/api/admin/accounts/bob/grant", {"amount": 1000}),
    ("POST", "/api/admin/accounts/bob/consume", {"amount": 10}),
    ("GET", "/api/admin/accounts/bob/ledger", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_a_user_cannot_read_or_change_another_account_through_any_route(
    client: TestClient, store: InMemoryStore, method: str, path: str, body: object
) -> None:
    client.post("/api/tokens/consume", headers=BOB, json={"amount": 7})
    before = store.load("bob")

    response = client.request(method, path, headers=ALICE, json=body)

    assert response.status_code == 403
    assert (response.json()["error"], response.json()["reason"]) == ("forbidden", "admin_only")
    assert "token_used" not in response.json()
    assert store.load("bob") == before


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_the_admin_routes_are_admin_only_even_for_the_callers_own_account(
    client: TestClient, method: str, path: str, body: object
) -> None:
    response = client.request(method, path.replace("bob", "alice"), headers=ALICE, json=body)

    assert (response.status_code, response.json()["reason"]) == (403, "admin_only")


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_an_admin_may_use_every_admin_route(
    client: TestClient, method: str, path: str, body: object
) -> None:
    response = client.request(method, path, headers=ROOT, json=body)

    assert response.status_code == 200


def test_the_user_routes_only_ever_touch_the_callers_own_account(
    client: TestClient, store: InMemoryStore
) -> None:
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 10})
    client.post("/api/tokens/set-plan", headers=ALICE, json={"plan": "basic"})

    bob = client.get("/api/tokens/usage", headers=BOB).json()
    bob_ledger = client.get("/api/tokens/ledger", headers=BOB).json()

    assert (bob["subject"], bob["token_used"]) == ("bob", 0)
    assert bob_ledger == {"entries": [], "next_cursor": None}
    assert store.load("bob") is None


def test_a_body_cannot_name_another_subject(client: TestClient, store: InMemoryStore) -> None:
    response = client.post(
        "/api/tokens/consume", headers=ALICE, json={"amount": 10, "subject": "bob"}
    )

    assert response.status_code == 422
    assert store.load("bob") is None


@pytest.mark.parametrize("plan", ["standard", "premium"])
def test_a_user_cannot_upgrade_itself_to_a_paid_plan(
    client: TestClient, store: InMemoryStore, plan: str
) -> None:
    response = client.post("/api/tokens/set-plan", headers=ALICE, json={"plan": plan})

    assert (response.status_code, response.json()["reason"]) == (403, "payment_required")
    assert client.get("/api/tokens/usage", headers=ALICE).json()["plan"] == "basic"
    assert store.load("alice") is None


def test_an_admin_can_upgrade_a_user_to_a_paid_plan(client: TestClient) -> None:
    response = client.post(
        "/api/admin/accounts/alice/set-plan", headers=ROOT, json={"plan": "premium"}
    )

    assert response.status_code == 200
    assert client.get("/api/tokens/usage", headers=ALICE).json()["plan"] == "premium"


def test_a_user_asking_to_reset_its_usage_is_refused(
    client: TestClient, store: InMemoryStore
) -> None:
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 900})

    response = client.post(
        "/api/tokens/set-plan", headers=ALICE, json={"plan": "basic", "reset_used": True}
    )

    assert (response.status_code, response.json()["reason"]) == (403, "admin_only")
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 900


def test_an_admin_acting_on_its_own_user_routes_stays_on_its_own_account(
    client: TestClient,
) -> None:
    client.post("/api/tokens/consume", headers=ROOT, json={"amount": 3})

    assert client.get("/api/tokens/usage", headers=ROOT).json()["subject"] == "root"
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 0
