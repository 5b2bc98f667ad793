"""The admin API of outbound events: webhook endpoints (a `whsec_` secret answered once),
their deliveries and a manual retry, and the pull feed (docs/events.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from http_support import ALICE, ROOT
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tokenplans.ports import Attempt
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.webhooks import check_target


@pytest.fixture
def client(make_app: Callable[..., Starlette]) -> Iterator[TestClient]:
    app = make_app(webhook_target=check_target)  # public targets only
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _create(client: TestClient, **body: object) -> dict[str, object]:
    answer = client.post("/api/admin/webhooks", json=body, headers=ROOT)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_an_admin_creates_lists_and_deletes_an_endpoint(client: TestClient) -> None:
    made = _create(
        client,
        url="https://93.184.216.34/hook",
        events=["usage.threshold_crossed"],
        description="alerts",
    )
    assert str(made["secret"]).startswith("whsec_")
    assert str(made["id"]).startswith("wh_")
    assert made["events"] == ["usage.threshold_crossed"]
    listed = client.get("/api/admin/webhooks", headers=ROOT).json()["webhooks"]
    assert [w["id"] for w in listed] == [made["id"]]
    assert "secret" not in listed[0]
    assert client.delete(f"/api/admin/webhooks/{made['id']}", headers=ROOT).json() == {
        "deleted": True
    }
    again = client.delete(f"/api/admin/webhooks/{made['id']}", headers=ROOT)
    assert again.status_code == 404
    assert client.get("/api/admin/webhooks", headers=ROOT).json() == {"webhooks": []}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"url": "http://127.0.0.1:9000/hook"}, "private or reserved"),
        ({"url": "http://169.254.169.254/latest"}, "private or reserved"),
        ({"url": "ftp://93.184.216.34/hook"}, "http or https"),
        ({"url": "https://93.184.216.34/hook", "events": ["nope"]}, "unknown event type"),
        ({"url": "https://93.184.216.34/hook", "events": []}, "non-empty"),
        ({"url": "https://93.184.216.34/hook", "extra": 1}, "extra"),
        ({"url": 5}, "url"),
        ({}, "url"),
    ],
)
def test_a_bad_or_private_endpoint_is_a_422_and_stores_nothing(
    client: TestClient, body: dict[str, object], why: str
) -> None:
    answer = client.post("/api/admin/webhooks", json=body, headers=ROOT)
    assert answer.status_code == 422
    assert why in answer.text
    assert client.get("/api/admin/webhooks", headers=ROOT).json() == {"webhooks": []}


def test_only_admins_manage_endpoints_or_read_events(client: TestClient) -> None:
    for method, path in [
        ("POST", "/api/admin/webhooks"),
        ("GET", "/api/admin/webhooks"),
        ("DELETE", "/api/admin/webhooks/wh_x"),
        ("GET", "/api/admin/webhooks/wh_x/deliveries"),
        ("POST", "/api/admin/webhooks/wh_x/deliveries/evt_x/retry"),
        ("GET", "/api/admin/events"),
    ]:
        answer = client.request(method, path, headers=ALICE, json={"url": "https://93.184.216.34/"})
        assert answer.status_code == 403, (method, path)
        assert client.request(method, path).status_code == 401


def test_the_feed_deliveries_and_a_retry(
    client: TestClient, store: InMemoryStore, clock: SettableClock
) -> None:
    made = _create(client, url="https://93.184.216.34/hook")
    quota = client.get("/api/tokens/usage", headers=ALICE).json()["token_quota"]
    client.post("/api/tokens/consume", json={"amount": quota}, headers=ALICE)
    feed = client.get("/api/admin/events?limit=1", headers=ROOT).json()
    assert [e["data"]["threshold"] for e in feed["events"]] == [80]
    rest = client.get(f"/api/admin/events?after={feed['next_after']}", headers=ROOT).json()
    assert [e["data"]["threshold"] for e in rest["events"]] == [100]
    assert rest["events"][0]["type"] == "usage.threshold_crossed"
    assert rest["events"][0]["position"] == feed["next_after"] + 1
    # The worker routes the events to the endpoint and tries the first (refused here, as
    # a receiver would: no request leaves the test).
    [claim] = store.claim_deliveries(clock.now(), limit=10, lease_seconds=30)
    store.finish_delivery(claim, Attempt(clock.now(), False, 503, retry_at=clock.now()))
    page = client.get(f"/api/admin/webhooks/{made['id']}/deliveries", headers=ROOT).json()
    assert [d["position"] for d in page["deliveries"]] == [2, 1]
    first = page["deliveries"][-1]
    assert first["attempts"] == 1
    assert first["status"] == "pending"
    retried = client.post(
        f"/api/admin/webhooks/{made['id']}/deliveries/{first['event_id']}/retry", headers=ROOT
    )
    assert retried.status_code == 200
    assert retried.json()["status"] == "pending"
    missing = client.post(
        f"/api/admin/webhooks/{made['id']}/deliveries/evt_nope/retry", headers=ROOT
    )
    assert missing.status_code == 404
    assert client.get("/api/admin/webhooks/wh_nope/deliveries", headers=ROOT).status_code == 404


@pytest.mark.parametrize("query", ["after=-1", "after=x", "limit=0", "limit=201", "limt=5"])
def test_a_bad_feed_query_is_a_422(client: TestClient, query: str) -> None:
    assert client.get(f"/api/admin/events?{query}", headers=ROOT).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://93.184.216.34/", "events": "usage.threshold_crossed"},
        {"url": "https://93.184.216.34/", "events": ["hold.expired", "hold.expired"]},
        {"url": "https://93.184.216.34/", "events": [5]},
        {"url": "https://93.184.216.34/", "description": "x" * 501},
    ],
)
def test_a_malformed_events_list_or_description_is_a_422(
    client: TestClient, body: dict[str, object]
) -> None:
    answer = client.post("/api/admin/webhooks", json=body, headers=ROOT)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]
