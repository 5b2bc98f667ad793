"""Which events a change emits: thresholds crossed once per period and re-armed, the
events of resets, plan changes, term ends and expired holds, and nothing from a change
that did not commit (docs/events.md)."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenplans import (
    EventType,
    InsufficientTokensError,
    PermissionDeniedError,
    PlanCatalog,
    Principal,
    TokenService,
)
from tokenplans._rules.events import check_thresholds
from tokenplans.testing import InMemoryStore, SettableClock

ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))
START = datetime(2026, 3, 10, tzinfo=UTC)


def _service(
    thresholds: tuple[int, ...] = (80, 100),
) -> tuple[TokenService, InMemoryStore, SettableClock]:
    store = InMemoryStore()
    clock = SettableClock(START)
    return TokenService(store, PlanCatalog.default(), clock, thresholds=thresholds), store, clock


def _crossings(store: InMemoryStore, subject: str = "alice") -> list[int]:
    return [
        e.data["threshold"]
        for e in store.events(limit=200).events
        if e.type is EventType.THRESHOLD_CROSSED and e.subject == subject
    ]


def test_each_threshold_fires_once_when_crossed_with_the_usage_after() -> None:
    service, store, _ = _service()
    quota = service.usage(Principal("alice")).token_quota
    service.consume(Principal("alice"), quota * 79 // 100)
    assert _crossings(store) == []
    service.consume(Principal("alice"), quota // 100)  # exactly 80 %
    service.consume(Principal("alice"), 1)
    assert _crossings(store) == [80]
    service.consume(Principal("alice"), quota - quota * 80 // 100 - 1)  # exactly 100 %
    assert _crossings(store) == [80, 100]
    event = store.events(limit=200).events[-1]
    assert event.data["usage"]["token_used"] == quota
    assert event.data["usage"]["remaining"] == 0
    assert event.data["version"] == store.load("alice").version  # type: ignore[union-attr]
    assert event.payload()["type"] == "usage.threshold_crossed"
    assert event.id.startswith("evt_")


def test_one_debit_across_both_thresholds_emits_both_in_order() -> None:
    service, store, _ = _service()
    quota = service.usage(Principal("alice")).token_quota
    service.consume(Principal("alice"), quota)
    assert _crossings(store) == [80, 100]


def test_a_reset_re_arms_the_thresholds_and_is_an_event() -> None:
    service, store, clock = _service()
    quota = service.usage(Principal("alice")).token_quota
    service.consume(Principal("alice"), quota)
    clock.advance(timedelta(days=31))
    service.consume(Principal("alice"), quota * 9 // 10)
    types = [e.type for e in store.events(limit=200).events]
    assert types.count(EventType.PERIOD_RESET) == 1
    assert _crossings(store) == [80, 100, 80]
    reset = next(e for e in store.events(limit=200).events if e.type is EventType.PERIOD_RESET)
    assert reset.data["usage"]["token_used"] == 0
    assert reset.created_at == datetime(2026, 4, 1, tzinfo=UTC)


def test_a_grant_or_an_upgrade_re_arms_and_a_plan_change_is_an_event() -> None:
    service, store, _ = _service()
    quota = service.usage(Principal("alice")).token_quota
    service.consume(Principal("alice"), quota * 9 // 10)
    service.grant(ADMIN, quota, subject="alice")  # 45 %: below 80 again
    service.consume(Principal("alice"), quota * 7 // 10)
    assert _crossings(store) == [80, 80]
    service.set_plan(ADMIN, "premium", subject="alice")
    [changed] = [e for e in store.events(limit=200).events if e.type is EventType.PLAN_CHANGED]
    assert changed.data["previous_plan"] == "basic"
    assert changed.data["usage"]["plan"] == "premium"


def test_credit_lots_granted_expired_and_voided_are_events_and_a_lot_re_arms() -> None:
    service, store, clock = _service()
    quota = service.usage(Principal("alice")).token_quota
    service.consume(Principal("alice"), quota * 9 // 10)
    service.grant(ADMIN, quota, subject="alice", lot_id="promo", expires="never")
    service.grant(ADMIN, 50, subject="alice", lot_id="soon", expires=START + timedelta(days=2))
    service.void_lot(ADMIN, "promo", subject="alice")  # 900 of 2,050: below 80 % again
    clock.advance(timedelta(days=3))
    service.consume(Principal("alice"), quota // 10)  # "soon" lapsed before this debit
    lot_events = [
        (e.type.value, e.data["lot_id"], e.data["amount"])
        for e in store.events(limit=200).events
        if e.type.value.startswith("lot.")
    ]
    assert lot_events == [
        ("lot.granted", "promo", quota),
        ("lot.granted", "soon", 50),
        ("lot.voided", "promo", quota),
        ("lot.expired", "soon", 50),
    ]
    # 90 % crossed 80 once; the grant took the level below 80, the void and the expiry
    # back to 90 %, which crossed it again (a new lot re-arms), and the last debit 100 %.
    assert _crossings(store) == [80, 80, 100]


def test_a_refused_or_forbidden_change_emits_nothing() -> None:
    service, store, _ = _service()
    with pytest.raises(InsufficientTokensError):
        service.consume(Principal("alice"), 10**9)
    with pytest.raises(PermissionDeniedError):
        service.grant(Principal("alice"), 10)
    assert store.events().events == ()


def test_an_expired_hold_is_an_event() -> None:
    service, store, clock = _service()
    service.reserve(Principal("alice"), 10, hold_id="h1", ttl_seconds=60)
    clock.advance(timedelta(minutes=5))
    service.consume(Principal("alice"), 1)
    expired = [e for e in store.events().events if e.type is EventType.HOLD_EXPIRED]
    assert [e.data["hold_id"] for e in expired] == ["h1"]
    assert expired[0].data["released"] == 10


def test_64_threads_crossing_together_fire_each_threshold_once() -> None:
    service, store, _ = _service()
    quota = service.usage(Principal("alice")).token_quota
    service.consume(Principal("alice"), quota * 79 // 100)
    start = threading.Barrier(64)
    step = max(1, quota // 200)

    def debit() -> None:
        start.wait()
        for _ in range(3):
            try:
                service.consume(Principal("alice"), step)
            except InsufficientTokensError:
                return

    threads = [threading.Thread(target=debit) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(_crossings(store)) == [80, 100]


def test_the_feed_pages_in_order_and_only_for_admins() -> None:
    service, _, _ = _service(thresholds=(1, 2, 3, 4, 5))
    quota = service.usage(Principal("alice")).token_quota
    for _ in range(5):
        service.consume(Principal("alice"), quota // 100)
    first = service.events(ADMIN, limit=2)
    second = service.events(ADMIN, after=first.next_after, limit=10)
    positions = [e.position for e in (*first.events, *second.events)]
    assert positions == sorted(positions) == list(range(1, len(positions) + 1))
    assert [e.data["threshold"] for e in (*first.events, *second.events)] == [1, 2, 3, 4, 5]
    assert service.events(ADMIN, after=second.next_after).events == ()
    with pytest.raises(PermissionDeniedError):
        service.events(Principal("alice"))


@pytest.mark.parametrize("bad", [0, -5, 1001, True, 2.5])
def test_a_threshold_is_a_whole_percentage(bad: object) -> None:
    with pytest.raises(ValueError, match="threshold"):
        check_thresholds([bad])  # type: ignore[list-item]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("debit"), st.integers(1, 400)),
            st.tuples(st.just("grant"), st.integers(1, 400)),
            st.tuples(st.just("days"), st.integers(1, 40)),
        ),
        max_size=30,
    )
)
def test_a_crossing_is_an_upward_transition_and_never_repeats_without_a_re_arm(
    steps: list[tuple[str, int]],
) -> None:
    """Within one period and no grant, each threshold fires at most once; every event is
    a transition of the account's level from below the threshold to at or above it."""
    service, store, clock = _service(thresholds=(50, 80, 100))
    since_rearm: list[int] = []
    for action, value in steps:
        seen = len(_crossings(store))
        if action == "debit":
            with contextlib.suppress(InsufficientTokensError):
                service.consume(Principal("alice"), value)
        elif action == "grant":
            service.grant(ADMIN, value, subject="alice")
        else:
            clock.advance(timedelta(days=value))
            service.usage(Principal("alice"))
        new = _crossings(store)[seen:]
        if action == "grant" or (action == "days" and new == []):
            since_rearm = []
        since_rearm.extend(new)
        assert len(since_rearm) == len(set(since_rearm))
    for event in store.events(limit=200).events:
        if event.type is EventType.THRESHOLD_CROSSED:
            usage = event.data["usage"]
            assert usage["token_used"] * 100 >= event.data["threshold"] * usage["token_quota"]
