"""Every route of the HTTP API table (docs/http-api.md; payments aside) answering its JSON."""

from __future__ import annotations

from collections.abc import Callable

from http_support import ALICE, BOB, ROOT
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tokenplans import TokenService
from tokenplans.testing import InMemoryStore, SettableClock

JANUARY = {"period_start": "2026-01-01T00:00:00Z", "period_end": "2026-02-01T00:00:00Z"}


def test_health_says_ok_without_a_token(client: TestClient) -> None:
    response = client.get("/api/health")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readiness_reports_the_database(client: TestClient) -> None:
    response = client.get("/api/health/ready")

    assert (response.status_code, response.json()) == (200, {"status": "ok", "database": "ok"})


def test_readiness_runs_the_configured_probe(make_app: Callable[..., Starlette]) -> None:
    probed: list[bool] = []
    client = TestClient(make_app(readiness=lambda: probed.append(True)))

    response = client.get("/api/health/ready")

    assert (response.status_code, probed) == (200, [True])


def test_root_names_the_api_and_its_base_url(client: TestClient) -> None:
    response = client.get("/")

    assert response.json() == {"message": "tokenplans", "base_url": "http://testserver/api"}


def test_root_reports_a_configured_base_url_and_title(
    make_app: Callable[..., Starlette],
) -> None:
    client = TestClient(make_app(base_url="https://billing.example/api", title="Token API"))

    response = client.get("/")

    assert response.json() == {"message": "Token API", "base_url": "https://billing.example/api"}


def test_plans_lists_the_catalog_by_rank(client: TestClient) -> None:
    body = client.get("/api/plans").json()

    assert body["default_plan"] == "basic"
    assert [(p["id"], p["price"], p["tokens"], p["duration_days"]) for p in body["plans"]] == [
        ("basic", 0, 1000, None),
        ("standard", 2900, 10000, 30),
        ("premium", 9900, 50000, 30),
    ]


def test_a_new_user_reads_a_fresh_basic_account(client: TestClient) -> None:
    response = client.get("/api/tokens/usage", headers=ALICE)

    assert response.status_code == 200
    assert response.json() == {
        "plan": "basic",
        "token_quota": 1000,
        "token_used": 0,
        "remaining": 1000,
        "plan_end_at": None,
        "token_held": 0,
        "subject": "alice",
        "features": [],
        **JANUARY,
    }


def test_consume_debits_and_answers_the_usage_after(client: TestClient) -> None:
    response = client.post("/api/tokens/consume", headers=ALICE, json={"amount": 300})

    assert response.status_code == 200
    assert response.json() == {
        "plan": "basic",
        "token_quota": 1000,
        "token_used": 300,
        "remaining": 700,
        "plan_end_at": None,
        "token_held": 0,
        "subject": "alice",
        "amount": 300,
        "idempotency_key": None,
        "replayed": False,
        **JANUARY,
    }
    assert client.get("/api/tokens/usage", headers=ALICE).json()["remaining"] == 700


def test_a_retried_consume_with_the_same_key_debits_once(client: TestClient) -> None:
    request = {"amount": 300, "idempotency_key": "chat-42"}
    first = client.post("/api/tokens/consume", headers=ALICE, json=request)

    again = client.post("/api/tokens/consume", headers=ALICE, json=request)

    assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
    assert again.json()["remaining"] == 700
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 300


def test_a_user_can_downgrade_its_own_plan(
    client: TestClient, service: TokenService, clock: SettableClock
) -> None:
    client.post("/api/admin/accounts/alice/set-plan", headers=ROOT, json={"plan": "premium"})

    response = client.post("/api/tokens/set-plan", headers=ALICE, json={"plan": "standard"})

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["message"], body["plan"]) == (
        "ok",
        "downgraded to standard",
        "standard",
    )
    assert (body["token_quota"], body["token_used"], body["remaining"]) == (10000, 0, 10000)
    assert body["plan_end_at"] == "2026-02-14T12:00:00Z"


def test_set_plan_to_the_same_plan_confirms_it(client: TestClient) -> None:
    response = client.post(
        "/api/tokens/set-plan", headers=ALICE, json={"plan": "basic", "reset_used": None}
    )

    assert response.json()["message"] == "plan confirmed"


def test_ledger_pages_newest_first_with_a_cursor(client: TestClient) -> None:
    for amount in (1, 2, 3):
        client.post("/api/tokens/consume", headers=ALICE, json={"amount": amount})

    first = client.get("/api/tokens/ledger", params={"limit": 2}, headers=ALICE).json()
    rest = client.get(
        "/api/tokens/ledger", params={"limit": 2, "cursor": first["next_cursor"]}, headers=ALICE
    ).json()

    assert [(e["version"], e["kind"], e["amount"]) for e in first["entries"]] == [
        (4, "debited", 3),
        (3, "debited", 2),
    ]
    assert [(e["version"], e["kind"]) for e in rest["entries"]] == [(2, "debited"), (1, "opened")]
    assert rest["next_cursor"] is None
    assert first["entries"][0]["token_used"] == 6
    assert first["entries"][0]["at"] == "2026-01-15T12:00:00Z"


def test_an_admin_reads_any_account(client: TestClient) -> None:
    client.post("/api/tokens/consume", headers=BOB, json={"amount": 5})

    response = client.get("/api/admin/accounts/bob", headers=ROOT)

    assert (response.status_code, response.json()["token_used"]) == (200, 5)


def test_an_admin_upgrades_a_user_with_carry_over(client: TestClient) -> None:
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 400})

    response = client.post(
        "/api/admin/accounts/alice/set-plan", headers=ROOT, json={"plan": "premium"}
    )

    body = response.json()
    assert (body["message"], body["token_quota"], body["token_used"]) == (
        "upgraded to premium with carry-over",
        50600,
        0,
    )
    assert client.get("/api/tokens/usage", headers=ALICE).json()["plan"] == "premium"


def test_an_admin_resets_used_tokens(client: TestClient) -> None:
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 400})

    response = client.post(
        "/api/admin/accounts/alice/set-plan",
        headers=ROOT,
        json={"plan": "basic", "reset_used": True},
    )

    assert (response.json()["token_used"], response.json()["remaining"]) == (0, 1000)


def test_an_admin_grants_tokens_for_the_current_period(client: TestClient) -> None:
    response = client.post("/api/admin/accounts/alice/grant", headers=ROOT, json={"amount": 250})

    assert (response.status_code, response.json()["token_quota"]) == (200, 1250)
    assert client.get("/api/tokens/usage", headers=ALICE).json()["remaining"] == 1250


def test_an_admin_consumes_on_behalf_of_a_user(client: TestClient) -> None:
    response = client.post("/api/admin/accounts/alice/consume", headers=ROOT, json={"amount": 70})

    assert (response.status_code, response.json()["subject"]) == (200, "alice")
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 70


def test_an_admin_reads_any_ledger(client: TestClient, store: InMemoryStore) -> None:
    client.post("/api/admin/accounts/alice/grant", headers=ROOT, json={"amount": 9})

    entries = client.get("/api/admin/accounts/alice/ledger", headers=ROOT).json()["entries"]

    assert [(e["kind"], e["actor"]) for e in entries] == [("granted", "root"), ("opened", None)]
    assert len(store.history("alice")) == 2


def test_every_response_carries_a_request_id_and_echoes_a_sane_one(client: TestClient) -> None:
    generated = client.get("/api/health")
    echoed = client.get("/api/health", headers={"X-Request-ID": "req-123"})

    assert len(generated.headers["X-Request-ID"]) == 32
    assert echoed.headers["X-Request-ID"] == "req-123"


def test_generated_request_ids_differ_from_request_to_request(client: TestClient) -> None:
    ids = {client.get("/api/health").headers["X-Request-ID"] for _ in range(20)}

    assert len(ids) == 20
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_cors_allows_the_reference_frontends_by_default(client: TestClient) -> None:
    preflight = client.options(
        "/api/tokens/usage",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    stranger = client.get("/api/health", headers={"Origin": "https://evil.example"})

    assert (preflight.status_code, preflight.json()) == (200, {"status": "ok"})
    assert preflight.headers["content-length"] == str(len(preflight.content))
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert preflight.headers["access-control-allow-headers"] == "authorization"
    assert "access-control-allow-origin" not in stranger.headers


def test_cors_origins_come_from_the_options(make_app: Callable[..., Starlette]) -> None:
    client = TestClient(make_app(cors_origins=["https://app.example"]))

    allowed = client.get("/api/health", headers={"Origin": "https://app.example"})
    default = client.get("/api/health", headers={"Origin": "http://localhost:5173"})

    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in default.headers


def test_swagger_ui_is_served_from_local_files(client: TestClient) -> None:
    page = client.get("/docs")
    script = client.get("/docs/assets/swagger-ui-bundle.js")

    assert page.status_code == 200
    assert "docs/assets/swagger-ui-bundle.js" in page.text
    assert "http" not in page.text.split("<body>")[1]  # no CDN, no absolute URL
    assert "validatorUrl: null" in page.text  # nor the public validator's badge
    assert (script.status_code, len(script.content) > 100_000) == (200, True)


def test_openapi_document_is_served(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "/"}]
