"""The usage page over each SQL store: what it shows is what the database holds, and
paying from it applies the plan once."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from db_backends import SQL_BACKENDS, backend_param
from portal_support import build
from sqlalchemy import Engine
from starlette.testclient import TestClient

from tokenplans import ModelUsage, PaymentStatus, Principal
from tokenplans_adapters.sql import SqlAccountStore

RACERS = 6


@pytest.mark.parametrize("backend", [backend_param(b) for b in SQL_BACKENDS])
def test_the_page_reads_the_database_and_pays_once(
    backend: str, engine_for: Callable[[str], Engine]
) -> None:
    subject = f"portal-{uuid.uuid4()}"
    user = Principal(subject)
    store = SqlAccountStore(engine_for(backend), clock_source="process")
    built = build(store=store, users={"user-token": user})
    built.service.consume(user, usage=ModelUsage("gpt-4o", 700, 300))
    built.clock.advance(timedelta(days=1))
    built.service.consume(user, usage=ModelUsage("claude-sonnet-4", 400, 100))
    built.service.consume(user, 123)
    built.service.reserve(user, 250, hold_id="call-1")
    client = TestClient(built.app)
    link = client.post(
        "/api/tokens/portal-link", headers={"Authorization": "Bearer user-token"}
    ).json()["url"]
    client.get(link)

    page = client.get("/account").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    checkout = client.post("/account/upgrade", data={"csrf": csrf, "plan": "pro"}).text
    order = re.search(r'name="order_id" value="([^"]+)"', checkout).group(1)  # type: ignore[union-attr]
    for _ in range(2):
        client.post("/account/pay", data={"csrf": csrf, "order_id": order})
    after = client.get("/account").text

    assert 'data-testid="remaining">48,127<' in page  # 50,000 - 1,000 - 500 - 123 - 250
    assert 'data-testid="used">1,623<' in page
    assert 'data-testid="chart-total">1,623 credits<' in page
    assert "claude-sonnet-4" in page
    assert "call-1" in page
    assert 'data-testid="plan">Pro<' in after
    (payment,) = store.payments_of(subject)
    assert payment.status is PaymentStatus.PAID
    assert built.service.usage(user).token_quota == 1_000_000 + 50_000 - 1_623


@pytest.mark.parametrize("backend", [backend_param(b) for b in ["memory", *SQL_BACKENDS]])
def test_racing_payments_of_one_order_from_the_page_apply_it_once(
    backend: str, engine_for: Callable[[str], Engine]
) -> None:
    subject = f"portal-{uuid.uuid4()}"
    user = Principal(subject)
    store = (
        None
        if backend == "memory"
        else SqlAccountStore(engine_for(backend), clock_source="process")
    )
    built = build(store=store, users={"user-token": user})
    built.service.consume(user, 1000)
    client = TestClient(built.app)
    link = client.post(
        "/api/tokens/portal-link", headers={"Authorization": "Bearer user-token"}
    ).json()["url"]
    client.get(link)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/account").text).group(1)  # type: ignore[union-attr]
    checkout = client.post("/account/upgrade", data={"csrf": csrf, "plan": "pro"}).text
    order = re.search(r'name="order_id" value="([^"]+)"', checkout).group(1)  # type: ignore[union-attr]
    barrier = threading.Barrier(RACERS)

    def pay() -> int:
        racer = TestClient(built.app, cookies=dict(client.cookies))
        barrier.wait()
        return racer.post(
            "/account/pay", data={"csrf": csrf, "order_id": order}, follow_redirects=False
        ).status_code

    with ThreadPoolExecutor(RACERS) as pool:
        statuses = list(pool.map(lambda _: pay(), range(RACERS)))

    assert statuses == [303] * RACERS  # each sees the order paid
    assert built.service.usage(user).token_quota == 1_000_000 + 50_000 - 1000
    upgrades = [e for e in built.store.history(subject) if e.kind.value == "plan_changed"]
    assert len(upgrades) == 1
