"""``GET /metrics`` on the composed server: the documented names, in the Prometheus text
format (read by prometheus_client's own parser), values that move with consumes, holds
and settles, and no subject or hold id in any label."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from db_backends import SQL_BACKENDS, backend_param
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from starlette.testclient import TestClient

from tokenplans import EntryKind, PlanCatalog, Principal, TokenService
from tokenplans.ports import (
    AccountDirectory,
    ClockedStore,
    Commit,
    EventStore,
    RowLockingStore,
    UsageReports,
    WriteConflictError,
)
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.jwt_identity import mint_token
from tokenplans_adapters.main import Settings, build_app
from tokenplans_adapters.metrics import (
    Metrics,
    OutboxStats,
    counting_store,
    time_pool_checkouts,
)
from tokenplans_adapters.sql import SqlAccountStore, make_engine, upgrade_schema

SECRET = "metrics-secret-that-is-long-enough-0123456789abcdef"
#: A subject and a hold id no label may ever show.
SUBJECT = "user-7f3a9c-secret-subject"
HOLD_ID = "hold-42-e0b1c2d3"

#: Every metric docs/metrics.md's table lists, by family name, with its type.
DOCUMENTED = {
    name.removesuffix("_total"): kind
    for name, kind in re.findall(
        r"^\| `(tokenplans_[a-z_]+)` \| (counter|histogram|gauge) \|",
        (Path(__file__).parents[2] / "docs" / "metrics.md").read_text(),
        re.MULTILINE,
    )
}


def _settings(workdir: Path, **extra: str) -> Settings:
    url = f"sqlite:///{workdir / 'metrics.sqlite3'}"
    upgrade_schema(url)
    return Settings.from_env(
        {"TOKENPLANS_DATABASE_URL": url, "TOKENPLANS_JWT_SECRET": SECRET, **extra}
    )


@pytest.fixture
def client(workdir: Path) -> Iterator[TestClient]:
    with TestClient(build_app(_settings(workdir))) as test:
        yield test


def _scrape(client: TestClient, **headers: str) -> dict[str, Any]:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family for family in text_string_to_metric_families(answer.text)}


def _value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    return sum(
        s.value
        for s in families[family].samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_the_documented_metrics_are_served_in_the_prometheus_format(client: TestClient) -> None:
    families = _scrape(client)

    assert len(DOCUMENTED) == 11
    for name, kind in DOCUMENTED.items():
        assert families[name].type == kind, name
    # The server plugs its outbox in: nothing waits in a new database.
    assert families["tokenplans_outbox_backlog"].samples[0].value == 0
    # (prometheus_client adds each counter's and histogram's creation time as *_created)
    served = {name.removesuffix("_created") for name in families if name.startswith("tokenplans_")}
    assert served <= set(DOCUMENTED)  # nothing served that the page does not list


def test_debits_holds_and_settles_move_their_counters(client: TestClient) -> None:
    user = {"Authorization": f"Bearer {mint_token(SUBJECT, secret=SECRET)}"}
    before = _scrape(client)

    client.post("/api/tokens/consume", headers=user, json={"amount": 30})
    client.post("/api/tokens/holds", headers=user, json={"amount": 50, "hold_id": HOLD_ID})
    client.post(f"/api/tokens/holds/{HOLD_ID}/settle", headers=user, json={"amount": 20})
    client.post("/api/tokens/holds", headers=user, json={"amount": 5, "hold_id": "h2"})
    client.post("/api/tokens/holds/h2/release", headers=user)
    client.post("/api/tokens/consume", headers=user, json={"amount": 10**9})  # a 402
    after = _scrape(client)

    def moved(family: str, sample: str, **labels: str) -> float:
        return _value(after, family, sample, **labels) - _value(before, family, sample, **labels)

    entries = "tokenplans_ledger_entries"
    assert moved(entries, f"{entries}_total", kind=EntryKind.DEBITED.value) == 1
    assert moved(entries, f"{entries}_total", kind=EntryKind.HOLD_PLACED.value) == 2
    assert moved(entries, f"{entries}_total", kind=EntryKind.HOLD_SETTLED.value) == 1
    assert moved(entries, f"{entries}_total", kind=EntryKind.HOLD_RELEASED.value) == 1
    credits = "tokenplans_ledger_credits"
    assert moved(credits, f"{credits}_total", kind=EntryKind.DEBITED.value) == 30
    # the account's opening entry, then a commit per change
    assert moved("tokenplans_commits", "tokenplans_commits_total") == 5
    requests = "tokenplans_http_requests"
    consume = {"method": "POST", "route": "/api/tokens/consume"}
    assert moved(requests, f"{requests}_total", status="200", **consume) == 1
    assert moved(requests, f"{requests}_total", status="402", **consume) == 1
    settle = {"method": "POST", "route": "/api/tokens/holds/{hold_id}/settle"}
    assert moved(requests, f"{requests}_total", status="200", **settle) == 1
    latency = "tokenplans_http_request_duration_seconds"
    assert moved(latency, f"{latency}_count", **consume) == 2
    assert moved("tokenplans_db_pool_wait_seconds", "tokenplans_db_pool_wait_seconds_count") > 0

    text = client.get("/metrics").text
    assert SUBJECT not in text
    assert HOLD_ID not in text
    assert "h2" not in re.findall(r'"([^"]*)"', text)


def test_an_unknown_path_is_counted_as_unmatched_not_by_its_path(client: TestClient) -> None:
    client.get(f"/scan/{SUBJECT}/wp-admin.php")
    client.get(f"/api/admin/accounts/{SUBJECT}")  # a 401, counted by its template

    families = _scrape(client)
    routes = {s.labels["route"] for s in families["tokenplans_http_requests"].samples}

    assert "<unmatched>" in routes
    assert "/api/admin/accounts/{subject}" in routes
    assert not any(SUBJECT in route for route in routes)


def test_a_metrics_token_guards_the_scrape(workdir: Path) -> None:
    settings = _settings(workdir, TOKENPLANS_METRICS_TOKEN="scrape-token-0123456789")
    with TestClient(build_app(settings)) as client:
        refused = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        families = _scrape(client, Authorization="Bearer scrape-token-0123456789")

    assert (refused.status_code, wrong.status_code) == (401, 401)
    assert "tokenplans_commits" in families


def test_turned_off_there_is_no_route_and_no_counting(workdir: Path) -> None:
    settings = _settings(workdir, TOKENPLANS_METRICS="false")
    app = build_app(settings)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 404
        document = client.get("/openapi.json").json()

    assert "/metrics" not in document["paths"]
    assert not any(m.cls.__name__ == "RequestMetricsMiddleware" for m in app.user_middleware)


def test_metrics_is_documented_in_openapi_when_on(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]

    assert operation["operationId"] == "getMetrics"
    assert "text/plain" in operation["responses"]["200"]["content"]


# -- the store wrapper ---------------------------------------------------------------


class _LosingStore(InMemoryStore):
    """Loses the first ``losses`` commits, as if another request had committed first."""

    def __init__(self, losses: int) -> None:
        super().__init__()
        self.losses = losses

    def commit(self, commit: Commit) -> None:
        if self.losses:
            self.losses -= 1
            raise WriteConflictError("lost the race")
        super().commit(commit)


def _counted(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels or None) or 0.0


def test_conflicts_are_counted_once_each_and_the_retried_commit_once() -> None:
    metrics = Metrics()
    store = counting_store(_LosingStore(losses=3), metrics)
    service = TokenService(store, _catalog(), SettableClock())

    service.consume(Principal("alice"), 7)

    assert _counted(metrics, "tokenplans_write_conflicts_total") == 3
    assert _counted(metrics, "tokenplans_commits_total") == 1
    assert _counted(metrics, "tokenplans_ledger_entries_total", kind="debited") == 1


@pytest.mark.parametrize("backend", [backend_param(b) for b in SQL_BACKENDS])
def test_with_a_row_lock_entries_count_when_their_transaction_commits(
    backend: str, engine_for: Callable[[str], Engine]
) -> None:
    engine = make_engine(engine_for(backend).url.render_as_string(hide_password=False))
    metrics = Metrics()
    time_pool_checkouts(engine, metrics)
    store = counting_store(SqlAccountStore(engine), metrics)
    service = TokenService(store, _catalog(), SettableClock())
    subject = Principal(f"metrics-{uuid.uuid4()}")
    threads = [threading.Thread(target=service.consume, args=(subject, 1)) for _ in range(8)]

    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        used = service.usage(subject).token_used
    finally:
        engine.dispose()

    assert callable(store.locked)  # the capability is still seen
    assert used == 8
    assert _counted(metrics, "tokenplans_ledger_entries_total", kind="debited") == 8
    assert _counted(metrics, "tokenplans_ledger_entries_total", kind="opened") == 1
    assert _counted(metrics, "tokenplans_commits_total") == 8
    assert _counted(metrics, "tokenplans_db_pool_wait_seconds_count") >= 9


def test_the_counted_store_keeps_every_capability_of_the_store(workdir: Path) -> None:
    # The services find them with isinstance on runtime protocols, which Python 3.12+
    # answers with inspect.getattr_static: a __getattr__ forwarder would hide them all.
    url = f"sqlite:///{workdir / 'capabilities.sqlite3'}"
    upgrade_schema(url)
    engine = make_engine(url)
    store = SqlAccountStore(engine)
    counted = counting_store(store, Metrics())
    for capability in (RowLockingStore, ClockedStore, UsageReports, AccountDirectory, EventStore):
        assert isinstance(store, capability), capability
        assert isinstance(counted, capability), capability
    assert counted.usage_rows is not None
    clock = SettableClock(datetime(2026, 3, 10, tzinfo=UTC))
    service = TokenService(counted, PlanCatalog.default(), clock)
    service.consume(Principal("alice"), 5)
    admin = Principal("ops", frozenset({"tokenplans:admin"}))
    assert service.list_accounts(admin, limit=10).accounts[0].token_used == 5
    engine.dispose()


def test_the_outbox_and_deliveries_plug_in() -> None:
    metrics = Metrics()
    metrics.watch_outbox(lambda: OutboxStats(backlog=4, oldest_age_seconds=12.5))
    metrics.count_delivery("delivered")
    metrics.count_delivery("failed")
    metrics.count_delivery("delivered")

    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}

    assert set(families) >= {"tokenplans_outbox_backlog", "tokenplans_outbox_oldest_age_seconds"}
    assert families["tokenplans_outbox_backlog"].samples[0].value == 4
    assert families["tokenplans_outbox_oldest_age_seconds"].samples[0].value == 12.5
    assert _counted(metrics, "tokenplans_webhook_deliveries_total", outcome="delivered") == 2
    with pytest.raises(ValueError, match="short lower-case word"):
        metrics.count_delivery("evt_01HZX-endpoint-9")


def _catalog() -> PlanCatalog:
    return PlanCatalog.default()
