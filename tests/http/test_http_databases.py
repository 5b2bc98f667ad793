"""The main HTTP flows on real databases: SQLite always, MariaDB and PostgreSQL when set.

``TOKENPLANS_TEST_POSTGRES_URL`` / ``TOKENPLANS_TEST_MYSQL_URL`` unset: those run skip;
set but unreachable: they fail. The databases are shared with concurrent runs, so the
schema is upgraded idempotently and every test acts on fresh uuid subjects.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from db_backends import SQL_BACKENDS, backend_param
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from tokenplans import ADMIN_SCOPE, PlanCatalog, Principal, TokenService
from tokenplans.testing import SettableClock, StaticIdentity
from tokenplans_adapters.http import create_app
from tokenplans_adapters.sql import SqlAccountStore, make_engine

USER = {"Authorization": "Bearer user-token"}
ADMIN = {"Authorization": "Bearer admin-token"}


@pytest.fixture(params=[backend_param(b) for b in SQL_BACKENDS])
def engine(request: pytest.FixtureRequest, engine_for: Callable[[str], Engine]) -> Engine:
    return engine_for(request.param)


@pytest.fixture
def subject() -> str:
    return f"user-{uuid.uuid4()}"


@pytest.fixture
def client(engine: Engine, subject: str) -> TestClient:
    store = SqlAccountStore(engine, clock_source="process")
    identity = StaticIdentity(
        {
            "user-token": Principal(subject),
            "admin-token": Principal(f"admin-{uuid.uuid4()}", frozenset({ADMIN_SCOPE})),
        }
    )
    service = TokenService(store, PlanCatalog.default(), SettableClock())
    return TestClient(create_app(service, identity, readiness=store.ping))


def test_readiness_touches_the_database(client: TestClient) -> None:
    assert client.get("/api/health/ready").json() == {"status": "ok", "database": "ok"}


def test_a_user_consumes_retries_and_runs_out(client: TestClient) -> None:
    debit = {"amount": 600, "idempotency_key": "chat-1"}

    first = client.post("/api/tokens/consume", headers=USER, json=debit)
    retry = client.post("/api/tokens/consume", headers=USER, json=debit)
    conflict = client.post("/api/tokens/consume", headers=USER, json={**debit, "amount": 601})
    short = client.post("/api/tokens/consume", headers=USER, json={"amount": 401})

    assert (first.status_code, first.json()["remaining"], first.json()["replayed"]) == (
        200,
        400,
        False,
    )
    assert (retry.status_code, retry.json()["remaining"], retry.json()["replayed"]) == (
        200,
        400,
        True,
    )
    assert conflict.status_code == 409
    assert (short.status_code, short.json()["remaining"]) == (402, 400)
    assert client.get("/api/tokens/usage", headers=USER).json()["token_used"] == 600


def test_an_admin_grant_or_plan_change_retried_with_its_key_applies_once(
    client: TestClient, subject: str
) -> None:
    """A 503 says retry: a grant (or set-plan) sent again with its idempotency key answers
    as the first one did and changes nothing more."""
    grant = f"/api/admin/accounts/{subject}/grant"
    first = client.post(grant, headers=ADMIN, json={"amount": 500, "idempotency_key": "g-1"})
    retry = client.post(grant, headers=ADMIN, json={"amount": 500, "idempotency_key": "g-1"})
    other = client.post(grant, headers=ADMIN, json={"amount": 600, "idempotency_key": "g-1"})
    set_plan = f"/api/admin/accounts/{subject}/set-plan"
    body = {"plan": "standard", "reset_used": True, "idempotency_key": "p-1"}
    moved = client.post(set_plan, headers=ADMIN, json=body)
    client.post("/api/tokens/consume", headers=USER, json={"amount": 9})
    moved_again = client.post(set_plan, headers=ADMIN, json=body)

    assert (first.status_code, retry.status_code, other.status_code) == (200, 200, 409)
    assert retry.json() == first.json()
    assert first.json()["token_quota"] == 1500
    assert other.json()["error"] == "idempotency conflict"
    assert moved_again.json() == moved.json()
    usage = client.get(f"/api/admin/accounts/{subject}", headers=ADMIN).json()
    assert (usage["plan"], usage["token_used"]) == ("standard", 9)
    kinds = [e["kind"] for e in client.get("/api/tokens/ledger", headers=USER).json()["entries"]]
    assert kinds == ["debited", "plan_changed", "granted", "opened"]


def test_an_admin_upgrades_grants_and_reads_the_ledger(client: TestClient, subject: str) -> None:
    client.post("/api/tokens/consume", headers=USER, json={"amount": 250})
    refused = client.post("/api/tokens/set-plan", headers=USER, json={"plan": "premium"})

    upgraded = client.post(
        f"/api/admin/accounts/{subject}/set-plan", headers=ADMIN, json={"plan": "premium"}
    )
    granted = client.post(f"/api/admin/accounts/{subject}/grant", headers=ADMIN, json={"amount": 5})
    page = client.get(f"/api/admin/accounts/{subject}/ledger?limit=2", headers=ADMIN).json()
    rest = client.get(
        "/api/tokens/ledger", headers=USER, params={"cursor": page["next_cursor"]}
    ).json()

    assert refused.status_code == 403
    assert (upgraded.json()["token_quota"], upgraded.json()["plan_end_at"]) == (
        50750,
        "2026-02-14T12:00:00Z",
    )
    assert granted.json()["token_quota"] == 50755
    assert [e["kind"] for e in page["entries"] + rest["entries"]] == [
        "granted",
        "plan_changed",
        "debited",
        "opened",
    ]
    assert rest["next_cursor"] is None


def test_a_downgrade_by_the_user_is_stored(
    client: TestClient, subject: str, engine: Engine
) -> None:
    client.post(f"/api/admin/accounts/{subject}/set-plan", headers=ADMIN, json={"plan": "premium"})

    response = client.post("/api/tokens/set-plan", headers=USER, json={"plan": "basic"})

    assert response.json()["message"] == "downgraded to basic"
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT plan_id FROM tokenplans_accounts WHERE subject = :s"), {"s": subject}
        ).scalar_one()
    assert stored == "basic"


def _stored(engine: Engine, subject: str) -> tuple[object, int]:
    """The account's version (``None``: no row) and its number of ledger rows."""
    with engine.connect() as conn:
        version = conn.execute(
            text("SELECT version FROM tokenplans_accounts WHERE subject = :s"), {"s": subject}
        ).scalar_one_or_none()
        entries = conn.execute(
            text("SELECT COUNT(*) FROM tokenplans_ledger_entries WHERE subject = :s"),
            {"s": subject},
        ).scalar_one()
    return version, entries


def test_a_check_writes_nothing_and_predicts_the_consume(
    client: TestClient, subject: str, engine: Engine
) -> None:
    fresh = client.post("/api/tokens/check", headers=USER, json={"amount": 1000})
    assert _stored(engine, subject) == (None, 0)  # a never-seen subject: no row made
    client.post("/api/tokens/consume", headers=USER, json={"amount": 400})
    before = _stored(engine, subject)

    fits = client.post("/api/tokens/check", headers=USER, json={"amount": 600})
    short = client.post(f"/api/admin/accounts/{subject}/check", headers=ADMIN, json={"amount": 601})

    assert fresh.json()["allowed"] is True
    assert _stored(engine, subject) == before
    assert (fits.json()["allowed"], short.json()["reason"]) == (True, "insufficient_credits")
    assert client.post("/api/tokens/consume", headers=USER, json={"amount": 601}).status_code == 402
    assert client.post("/api/tokens/consume", headers=USER, json={"amount": 600}).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/tokenplans_test?connect_timeout=2",
        "mysql+pymysql://root@127.0.0.1:1/tokenplans_test?connect_timeout=2",
    ],
    ids=["postgres", "mysql"],
)
def test_an_unreachable_database_is_503_and_health_stays_ok(url: str) -> None:
    engine = make_engine(url)
    store = SqlAccountStore(engine, clock_source="process")
    service = TokenService(store, PlanCatalog.default(), SettableClock())
    identity = StaticIdentity({"user-token": Principal("nobody")})
    client = TestClient(create_app(service, identity, readiness=store.ping))

    try:
        ready = client.get("/api/health/ready")
        usage = client.get("/api/tokens/usage", headers=USER)
        health = client.get("/api/health")
    finally:
        engine.dispose()

    assert (ready.status_code, ready.json()["error"]) == (503, "database unavailable")
    assert (usage.status_code, usage.json()) == (503, {"error": "database unavailable"})
    assert health.status_code == 200
