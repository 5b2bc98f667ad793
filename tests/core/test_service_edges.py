"""Edges of the use cases found while testing the core: a clock in another UTC spelling,
and accounts left on a plan the catalog no longer has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tokenplans import InvalidRequestError, PlanCatalog, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock

ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))


class FixedClock:
    """A clock port implemented the way a library user might: any aware datetime."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 31, 23, 30, tzinfo=ZoneInfo("UTC")),
        datetime(2026, 2, 1, 5, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
    ids=["zoneinfo UTC", "IST offset"],
)
def test_a_clock_returning_any_aware_datetime_is_read_as_utc(moment: datetime) -> None:
    """Both moments are 2026-01-31 in UTC: the period is January, whatever the spelling."""
    service = TokenService(InMemoryStore(), PlanCatalog.default(), FixedClock(moment))

    receipt = service.consume(Principal("alice"), 10)

    assert receipt.usage.period_start == datetime(2026, 1, 1, tzinfo=UTC)
    assert receipt.at.tzinfo is UTC


def test_an_account_on_a_plan_dropped_from_the_catalog_can_still_change_plan() -> None:
    """A catalog edited between restarts must not lock its old subscribers out. The rules
    rank a dropped plan as the default one (so the move is a confirmation, and the quota
    falls to basic's at the next reset); the permission check must agree with them."""
    store, clock = InMemoryStore(), SettableClock()
    with_gold = PlanCatalog.from_mapping(
        {"basic": {"price": 0, "tokens": 1000}, "gold": {"price": 500, "tokens": 9000}}
    )
    TokenService(store, with_gold, clock).set_plan(ADMIN, "gold", subject="alice")
    service = TokenService(store, PlanCatalog.default(), clock)

    change = service.set_plan(Principal("alice"), "basic")

    assert (change.message, change.usage.plan) == ("plan confirmed", "basic")
    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    assert service.usage(Principal("alice")).token_quota == 1000


UNSTORABLE = ["nul\x00inside", "lone \ud800 surrogate"]


@pytest.mark.parametrize("subject", UNSTORABLE, ids=["NUL", "lone surrogate"])
def test_a_subject_no_store_can_keep_is_refused_and_nothing_is_written(subject: str) -> None:
    store = InMemoryStore()
    service = TokenService(store, PlanCatalog.default(), SettableClock())

    with pytest.raises(InvalidRequestError):
        service.consume(Principal(subject), 10)
    with pytest.raises(InvalidRequestError):
        service.usage(Principal(subject))

    assert store.load(subject) is None


@pytest.mark.parametrize("key", UNSTORABLE, ids=["NUL", "lone surrogate"])
def test_an_idempotency_key_no_store_can_keep_is_refused_and_nothing_is_written(
    key: str,
) -> None:
    store = InMemoryStore()
    service = TokenService(store, PlanCatalog.default(), SettableClock())

    with pytest.raises(InvalidRequestError):
        service.consume(Principal("alice"), 10, idempotency_key=key)

    assert store.load("alice") is None
