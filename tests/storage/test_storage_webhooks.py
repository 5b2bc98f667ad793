"""Delivering the outbox to a real local receiver, on every store: every signature checked
by the ``standardwebhooks`` package, 2xx delivered, anything else retried on the
schedule, in order per subject, an endpoint failing for long enough disabled once, a
private target refused (docs/events.md)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from receiver import Receiver, receiver
from standardwebhooks import Webhook
from storage_support import new_subject, service_over

from tokenplans import AccountStore, EventType, Principal
from tokenplans.ports import DeliveryStatus, EventStore, WebhookEndpoint
from tokenplans.testing import SettableClock
from tokenplans_adapters.webhooks import DeliverySettings, DeliveryWorker, Outcome, new_secret

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
FAST = DeliverySettings(
    retry_schedule=(60, 60, 60), jitter=0, timeout_seconds=2, allow_private_targets=True
)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


@pytest.fixture
def endpoint(store: AccountStore, hook: Receiver) -> Iterator[WebhookEndpoint]:
    assert isinstance(store, EventStore)
    made = WebhookEndpoint(
        id=f"wh_{uuid.uuid4().hex}", url=hook.url, secret=new_secret(), created_at=NOW
    )
    store.add_endpoint(made)
    yield made
    store.delete_endpoint(made.id)


def _worker(
    store: AccountStore, clock: SettableClock, settings: DeliverySettings = FAST
) -> DeliveryWorker:
    assert isinstance(store, EventStore)
    return DeliveryWorker(store, settings, now=clock.now)


def _mine(hook: Receiver, subjects: set[str]) -> list[dict[str, object]]:
    """The payloads ``hook`` received for ``subjects`` (the databases are shared)."""
    payloads = [json.loads(r.body) for r in hook.received]
    return [p for p in payloads if p["subject"] in subjects]


def _cross(store: AccountStore, clock: SettableClock, subject: str) -> None:
    service = service_over(store, clock)
    quota = service.usage(Principal(subject)).token_quota
    service.consume(Principal(subject), quota * 85 // 100)
    service.consume(Principal(subject), quota - quota * 85 // 100)


def test_every_delivery_is_signed_as_standard_webhooks_verifies(
    store: AccountStore, clock: SettableClock, hook: Receiver, endpoint: WebhookEndpoint
) -> None:
    subjects = {new_subject(), new_subject()}
    for subject in subjects:
        _cross(store, clock, subject)
    worker = _worker(store, clock)
    worker.run_until_idle()
    mine = [r for r in hook.received if json.loads(r.body)["subject"] in subjects]
    assert len(mine) == 4
    verifier = Webhook(endpoint.secret)
    for request in mine:
        verifier.verify(request.body, request.headers)  # raises on a bad signature
        assert request.headers["webhook-id"] == json.loads(request.body)["id"]
        assert request.headers["content-type"] == "application/json"
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(new_secret()).verify(mine[0].body, mine[0].headers)
    for subject in subjects:
        got = [p["data"]["threshold"] for p in _mine(hook, {subject})]  # type: ignore[index]
        assert got == [80, 100]
    assert worker.outcomes[Outcome.DELIVERED] >= 4


def test_a_receiver_down_then_up_gets_everything_in_order_per_subject(
    store: AccountStore, clock: SettableClock, hook: Receiver, endpoint: WebhookEndpoint
) -> None:
    subjects = [new_subject() for _ in range(3)]
    hook.status = 503
    for subject in subjects:
        _cross(store, clock, subject)
    worker = _worker(store, clock)
    worker.run_until_idle()
    # Each subject's first event was tried once; its second waits behind it.
    assert sorted(p["data"]["threshold"] for p in _mine(hook, set(subjects))) == [80, 80, 80]  # type: ignore[index]
    clock.advance(timedelta(seconds=61))
    worker.run_until_idle()
    hook.status = 200
    clock.advance(timedelta(seconds=61))
    worker.run_until_idle()
    delivered: dict[str, list[int]] = {}
    for payload in _mine(hook, set(subjects)):
        delivered.setdefault(str(payload["subject"]), []).append(payload["data"]["threshold"])  # type: ignore[index]
    for subject in subjects:
        # Two refused attempts of the 80 %, then the 80 % and the 100 %, in that order.
        assert delivered[subject] == [80, 80, 80, 100]
    assert isinstance(store, EventStore)
    statuses = {d.status for d in store.deliveries(endpoint.id)}
    assert statuses == {DeliveryStatus.DELIVERED}


def test_a_delivery_that_keeps_failing_fails_for_good_and_the_next_goes(
    store: AccountStore, clock: SettableClock, hook: Receiver, endpoint: WebhookEndpoint
) -> None:
    subject = new_subject()
    hook.status = 500
    _cross(store, clock, subject)
    worker = _worker(store, clock)
    for _ in range(4):  # the first attempt and three retries
        worker.run_until_idle()
        clock.advance(timedelta(seconds=61))
    hook.status = 204
    worker.run_until_idle()
    thresholds = [p["data"]["threshold"] for p in _mine(hook, {subject})]  # type: ignore[index]
    # The 80 % failed for good on its fourth attempt; the 100 % went next (still
    # refused), then through once the receiver recovered.
    assert thresholds == [80, 80, 80, 80, 100, 100]
    assert isinstance(store, EventStore)
    by_status = {d.status: d for d in store.deliveries(endpoint.id)}
    assert by_status[DeliveryStatus.FAILED].attempts == 4
    assert by_status[DeliveryStatus.FAILED].last_status_code == 500
    assert by_status[DeliveryStatus.DELIVERED].attempts == 2


def test_an_endpoint_failing_for_a_day_is_disabled_once(
    store: AccountStore, clock: SettableClock, hook: Receiver, endpoint: WebhookEndpoint
) -> None:
    hook.status = 502
    _cross(store, clock, new_subject())
    settings = DeliverySettings(retry_schedule=(3600,) * 30, jitter=0, allow_private_targets=True)
    worker = _worker(store, clock, settings)
    rounds = 0
    assert isinstance(store, EventStore)
    while (found := store.find_endpoint(endpoint.id)) is not None and found.enabled:
        worker.run_until_idle()
        clock.advance(timedelta(seconds=3601))
        rounds += 1
        assert rounds < 30
    assert rounds == 25  # failing since the first attempt; 24 h later, disabled
    tried = len(hook.received)
    clock.advance(timedelta(days=2))
    worker.run_until_idle()
    later = new_subject()
    _cross(store, clock, later)  # while disabled: kept for the endpoint, not sent
    worker.run_until_idle()
    assert len(hook.received) == tried  # nothing more goes to a disabled endpoint
    # A retry re-enables it: the retried delivery and what waited meanwhile go out.
    hook.status = 204
    first = store.deliveries(endpoint.id)[-1]
    assert store.retry_delivery(endpoint.id, first.event_id, clock.now()) is not None
    worker.run_until_idle()
    assert [p["data"]["threshold"] for p in _mine(hook, {later})] == [80, 100]  # type: ignore[index]


def test_a_private_target_is_refused_unless_allowed(
    store: AccountStore, clock: SettableClock, hook: Receiver, endpoint: WebhookEndpoint
) -> None:
    subject = new_subject()
    _cross(store, clock, subject)
    strict = DeliverySettings(retry_schedule=(60,), jitter=0, allow_private_targets=False)
    _worker(store, clock, strict).run_until_idle()
    assert _mine(hook, {subject}) == []
    assert isinstance(store, EventStore)
    [refused] = [d for d in store.deliveries(endpoint.id) if d.attempts]
    assert refused.last_error is not None
    assert "private or reserved" in refused.last_error
    assert refused.last_status_code is None


def test_a_slow_receiver_times_out_and_is_retried(
    store: AccountStore, clock: SettableClock, hook: Receiver, endpoint: WebhookEndpoint
) -> None:
    hook.delay = 1.5
    subject = new_subject()
    _cross(store, clock, subject)
    settings = DeliverySettings(
        retry_schedule=(60,), jitter=0, timeout_seconds=0.3, allow_private_targets=True
    )
    worker = _worker(store, clock, settings)
    worker.run_once()
    assert worker.outcomes[Outcome.RETRYING] >= 1
    assert isinstance(store, EventStore)
    [first] = [d for d in store.deliveries(endpoint.id) if d.attempts]
    assert first.last_error is not None
    assert "Timeout" in first.last_error
    assert first.status is DeliveryStatus.PENDING


def test_the_feed_and_the_webhooks_carry_the_same_events(
    store: AccountStore, clock: SettableClock, hook: Receiver, endpoint: WebhookEndpoint
) -> None:
    subject = new_subject()
    _cross(store, clock, subject)
    _worker(store, clock).run_until_idle()
    assert isinstance(store, EventStore)
    fed = [e.payload() for e in store.events(limit=1_000_000).events if e.subject == subject]
    assert _mine(hook, {subject}) == fed
    assert {p["type"] for p in fed} == {EventType.THRESHOLD_CROSSED.value}
