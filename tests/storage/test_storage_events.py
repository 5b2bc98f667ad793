"""The outbox on every store: events committed with their change and only then, a feed in
commit order without gaps, webhook endpoints, and deliveries claimed in order per
subject, leased, retried, failed, and an endpoint disabled once (docs/events.md)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from storage_support import ADMIN, new_subject, service_over

from tokenplans import AccountStore, EventType, InsufficientTokensError, Principal
from tokenplans._rules.events import event_id
from tokenplans.ports import (
    Attempt,
    Claim,
    Commit,
    DeliveryStatus,
    Event,
    EventStore,
    Payment,
    PaymentStatus,
    WebhookEndpoint,
    WriteConflictError,
)
from tokenplans.testing import SettableClock

NOW = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)


def _outbox(store: AccountStore) -> EventStore:
    assert isinstance(store, EventStore)
    return store


def _all_events(store: EventStore, subject: str) -> list[Event]:
    found: list[Event] = []
    after = 0
    while True:
        page = store.events(after=after, limit=200)
        found.extend(e for e in page.events if e.subject == subject)
        if not page.events:
            return found
        after = page.next_after


@pytest.fixture
def endpoint(store: AccountStore) -> Iterator[WebhookEndpoint]:
    """An endpoint for this test's own subjects (deleted afterwards: the databases are
    shared with other tests)."""
    outbox = _outbox(store)
    made = WebhookEndpoint(
        id=f"wh_{uuid.uuid4().hex}",
        url="https://example.com/hook",
        secret="whsec_" + "A" * 32,
        created_at=NOW,
        events=(EventType.THRESHOLD_CROSSED.value, EventType.PLAN_CHANGED.value),
    )
    outbox.add_endpoint(made)
    yield made
    outbox.delete_endpoint(made.id)


def _mine(claims: list[Claim] | tuple[Claim, ...], endpoint: WebhookEndpoint) -> list[Claim]:
    return [c for c in claims if c.endpoint.id == endpoint.id]


def _claim(store: EventStore, endpoint: WebhookEndpoint, now: datetime = NOW) -> list[Claim]:
    return _mine(list(store.claim_deliveries(now, limit=1000, lease_seconds=30)), endpoint)


def _cross(store: AccountStore, subject: str, clock: SettableClock | None = None) -> None:
    """Take ``subject`` past 80 % and 100 % of its quota: two threshold events."""
    service = service_over(store, clock or SettableClock(NOW))
    quota = service.usage(Principal(subject)).token_quota
    service.consume(Principal(subject), quota * 85 // 100)
    service.consume(Principal(subject), quota - quota * 85 // 100)


def test_a_commit_writes_its_events_and_a_lost_race_writes_none(store: AccountStore) -> None:
    outbox = _outbox(store)
    subject = new_subject()
    _cross(store, subject)
    events = _all_events(outbox, subject)
    assert [(e.type, e.data["threshold"]) for e in events] == [
        (EventType.THRESHOLD_CROSSED, 80),
        (EventType.THRESHOLD_CROSSED, 100),
    ]
    positions = [e.position or 0 for e in events]
    assert positions == sorted(positions)
    assert events[1].data["usage"]["remaining"] == 0
    account = store.load(subject)
    assert account is not None
    stray = Event(event_id(subject, "stray"), EventType.PERIOD_RESET, NOW, subject, {"a": 1})
    with pytest.raises(WriteConflictError):
        store.commit(Commit(account, account.version - 1, (), (stray,)))
    again = attrs.evolve(events[0], position=None)
    with pytest.raises(WriteConflictError):  # one id is one event
        store.commit(
            Commit(
                attrs.evolve(account, version=account.version + 1), account.version, (), (again,)
            )
        )
    assert _all_events(outbox, subject) == events


def test_the_feed_is_gap_free_and_in_order(store: AccountStore) -> None:
    outbox = _outbox(store)
    subjects = [new_subject() for _ in range(3)]
    for subject in subjects:
        _cross(store, subject)
    page = outbox.events(after=0, limit=1_000_000)
    positions = [e.position for e in page.events]
    assert positions == list(range(positions[0] or 1, (positions[0] or 1) + len(positions)))
    assert page.next_after == positions[-1]
    assert outbox.events(after=page.next_after).events == ()


def test_a_failed_payment_writes_its_event_with_it(store: AccountStore) -> None:
    outbox = _outbox(store)
    subject = new_subject()
    payment = Payment(
        id=f"tp_{uuid.uuid4().hex[:24]}",
        subject=subject,
        plan_id="premium",
        amount=100,
        currency="INR",
        order_id=f"order_{uuid.uuid4().hex}",
        status=PaymentStatus.CREATED,
        created_at=NOW,
        updated_at=NOW,
    )
    store.add_payment(payment)  # type: ignore[attr-defined]
    failed = attrs.evolve(payment, status=PaymentStatus.FAILED)
    from tokenplans._rules.events import payment_event  # noqa: PLC0415

    event = payment_event(failed, cause="evt-1")
    with pytest.raises(WriteConflictError):  # wrong expected status: nothing written
        store.update_payment(  # type: ignore[attr-defined]
            failed, expected_status=PaymentStatus.PAID, events=(event,)
        )
    assert _all_events(outbox, subject) == []
    store.update_payment(  # type: ignore[attr-defined]
        failed, expected_status=PaymentStatus.CREATED, events=(event,)
    )
    [stored] = _all_events(outbox, subject)
    assert stored.type is EventType.PAYMENT_FAILED
    assert stored.data["payment_id"] == payment.id


def test_endpoints_are_stored_listed_and_deleted(
    store: AccountStore, endpoint: WebhookEndpoint
) -> None:
    outbox = _outbox(store)
    assert outbox.find_endpoint(endpoint.id) == endpoint
    assert endpoint in outbox.endpoints()
    with pytest.raises(WriteConflictError):
        outbox.add_endpoint(endpoint)
    other = attrs.evolve(endpoint, id=f"wh_{uuid.uuid4().hex}", events=None, description="all")
    outbox.add_endpoint(other)
    assert outbox.delete_endpoint(other.id)
    assert not outbox.delete_endpoint(other.id)
    assert outbox.find_endpoint(other.id) is None


def _of(claims: list[Claim], *subjects: str) -> list[Claim]:
    return [claim for claim in claims if claim.event.subject in subjects]


def test_deliveries_go_in_order_per_subject_without_holding_back_others(
    store: AccountStore, endpoint: WebhookEndpoint
) -> None:
    outbox = _outbox(store)
    alice, bob = new_subject("alice"), new_subject("bob")
    _cross(store, alice)
    _cross(store, bob)
    # The store is shared: other tests' subjects may have events waiting too.
    first = _of(_claim(outbox, endpoint), alice, bob)
    # One head per subject: the 80 % of each, not their 100 %.
    assert sorted((c.event.subject, c.event.data["threshold"]) for c in first) == sorted(
        [(alice, 80), (bob, 80)]
    )
    assert _claim(outbox, endpoint) == []  # leased
    by_subject = {c.event.subject: c for c in first}
    delivered = Attempt(NOW, delivered=True, status_code=204)
    assert outbox.finish_delivery(by_subject[alice], delivered) is False
    assert not outbox.finish_delivery(by_subject[alice], Attempt(NOW, delivered=True))  # replay
    [next_alice] = _claim(outbox, endpoint)
    assert (next_alice.event.subject, next_alice.event.data["threshold"]) == (alice, 100)
    outbox.finish_delivery(next_alice, delivered)
    # Bob's head is retried later; until then his 100 % waits behind it.
    retry = NOW + timedelta(minutes=5)
    outbox.finish_delivery(
        by_subject[bob], Attempt(NOW, delivered=False, status_code=500, retry_at=retry)
    )
    assert _claim(outbox, endpoint) == []
    [again] = _of(_claim(outbox, endpoint, retry), alice, bob)
    assert again.delivery.event_id == by_subject[bob].delivery.event_id
    assert again.delivery.attempts == 1
    # Given up: failed for good, and the next one goes.
    outbox.finish_delivery(again, Attempt(retry, delivered=False, error="timeout"))
    [last] = _of(_claim(outbox, endpoint, retry), alice, bob)
    assert (last.event.subject, last.event.data["threshold"]) == (bob, 100)
    history = {d.event_id: d for d in outbox.deliveries(endpoint.id)}
    assert history[again.delivery.event_id].status is DeliveryStatus.FAILED
    assert history[again.delivery.event_id].attempts == 2
    assert history[again.delivery.event_id].last_error == "timeout"
    assert history[by_subject[alice].delivery.event_id].status is DeliveryStatus.DELIVERED
    assert history[by_subject[alice].delivery.event_id].last_status_code == 204
    assert last.event.payload()["data"]["usage"]["token_used"] > 0


def test_a_lapsed_lease_is_claimed_again_and_the_old_worker_records_nothing(
    store: AccountStore, endpoint: WebhookEndpoint
) -> None:
    outbox = _outbox(store)
    _cross(store, new_subject())
    [first] = _claim(outbox, endpoint)
    [second] = _claim(outbox, endpoint, NOW + timedelta(seconds=31))
    assert second.delivery.event_id == first.delivery.event_id
    assert second.token != first.token
    assert not outbox.finish_delivery(first, Attempt(NOW, delivered=True))
    assert outbox.deliveries(endpoint.id)[-1].status is DeliveryStatus.PENDING
    outbox.finish_delivery(second, Attempt(NOW, delivered=True))
    assert outbox.deliveries(endpoint.id)[-1].status is DeliveryStatus.DELIVERED


def test_an_endpoint_failing_for_a_day_is_disabled_once_and_retry_enables_it(
    store: AccountStore, endpoint: WebhookEndpoint
) -> None:
    outbox = _outbox(store)
    _cross(store, new_subject())
    at = NOW
    disabled = []
    for hour in (0, 12, 24, 25):
        at = NOW + timedelta(hours=hour)
        [claim] = _claim(outbox, endpoint, at)
        attempt = Attempt(at, False, 503, retry_at=at, disable_after_seconds=86400)
        disabled.append(outbox.finish_delivery(claim, attempt))
        if disabled[-1]:
            break
    assert disabled == [False, False, True]
    stored = outbox.find_endpoint(endpoint.id)
    assert stored is not None
    assert not stored.enabled
    assert stored.disabled_at == at
    assert _claim(outbox, endpoint, at + timedelta(days=1)) == []
    event_id_ = outbox.deliveries(endpoint.id)[-1].event_id
    assert outbox.retry_delivery(endpoint.id, event_id_, at) is not None
    assert outbox.retry_delivery(endpoint.id, "evt_none", at) is None
    stored = outbox.find_endpoint(endpoint.id)
    assert stored is not None
    assert stored.enabled
    assert stored.failing_since is None
    [claim] = _claim(outbox, endpoint, at)
    assert claim.delivery.event_id == event_id_


def test_an_endpoint_gets_only_the_types_it_asked_for_and_backlog_counts(
    store: AccountStore, endpoint: WebhookEndpoint
) -> None:
    outbox = _outbox(store)
    subject = new_subject()
    clock = SettableClock(NOW)
    service = service_over(store, clock)
    service.consume(Principal(subject), 1)
    clock.advance(timedelta(days=40))  # a reset: not asked for
    service.consume(Principal(subject), 1)
    service.set_plan(ADMIN, "premium", subject=subject)
    claims = _claim(outbox, endpoint, clock.now())
    assert [c.event.type for c in claims] == [EventType.PLAN_CHANGED]
    backlog = outbox.outbox_backlog(clock.now())
    assert backlog.pending >= 1
    assert backlog.oldest_age_seconds >= 0


def test_two_claimers_at_once_never_lease_one_delivery_twice(
    store: AccountStore, endpoint: WebhookEndpoint
) -> None:
    outbox = _outbox(store)
    for _ in range(12):
        _cross(store, new_subject())
    start = threading.Barrier(4)

    def claim_all() -> list[str]:
        start.wait()
        mine: list[str] = []
        for _ in range(6):
            for claim in _claim(outbox, endpoint):
                mine.append(claim.delivery.event_id)
                outbox.finish_delivery(claim, Attempt(NOW, delivered=True))
        return mine

    with ThreadPoolExecutor(4) as pool:
        got = [e for batch in pool.map(lambda _: claim_all(), range(4)) for e in batch]
    assert len(got) == len(set(got))
    assert len(got) <= 24


def test_64_concurrent_debits_cross_80_and_100_once_each(store: AccountStore) -> None:
    outbox = _outbox(store)
    subject = new_subject()
    service = service_over(store, SettableClock(NOW))
    quota = service.usage(Principal(subject)).token_quota
    service.consume(Principal(subject), quota * 78 // 100)
    start = threading.Barrier(64)
    step = max(1, quota // 100)

    def debit(_: int) -> None:
        start.wait()
        with contextlib.suppress(InsufficientTokensError):
            service.consume(Principal(subject), step)

    with ThreadPoolExecutor(64) as pool:
        list(pool.map(debit, range(64)))
    crossings = [
        e.data["threshold"]
        for e in _all_events(outbox, subject)
        if e.type is EventType.THRESHOLD_CROSSED
    ]
    assert sorted(crossings) == [80, 100]
