"""The report use cases' rules in the library: who may read what, the range and grouping
checks, what counts as spending, and the async facade."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenplans import (
    ADMIN_SCOPE,
    InvalidRequestError,
    ModelUsage,
    PermissionDeniedError,
    PlanCatalog,
    Principal,
    TokenService,
    UnknownPlanError,
    UsageRow,
)
from tokenplans.aio import AsyncTokenService
from tokenplans.testing import InMemoryStore, SettableClock

ALICE = Principal("alice")
ADMIN = Principal("ops", frozenset({ADMIN_SCOPE}))
DAY = date(2026, 1, 15)


@pytest.fixture
def service() -> TokenService:
    return TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())


def test_a_user_reads_its_own_report_and_no_one_elses(service: TokenService) -> None:
    service.consume(Principal("bob"), 5)
    with pytest.raises(PermissionDeniedError):
        service.usage_report(ALICE, start=DAY, end=DAY, subject="bob")
    assert service.usage_report(ALICE, start=DAY, end=DAY, subject="alice").rows == ()
    bobs = service.usage_report(ADMIN, start=DAY, end=DAY, subject="bob")
    assert (bobs.subject, bobs.totals.credits) == ("bob", 5)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.usage_report_all(ALICE, start=DAY, end=DAY),
        lambda s: s.top_spenders(ALICE, start=DAY, end=DAY),
        lambda s: s.list_accounts(ALICE),
    ],
)
def test_reading_every_account_needs_an_admin(service: TokenService, call: object) -> None:
    with pytest.raises(PermissionDeniedError):
        call(service)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2026, 1, 2), date(2026, 1, 1)),
        (date(2024, 1, 1), date(2025, 1, 1)),  # a leap year and one day: 367 days
        (datetime(2026, 1, 1, tzinfo=UTC), date(2026, 1, 2)),  # a datetime is not a day
        ("2026-01-01", date(2026, 1, 2)),
    ],
)
def test_a_bad_range_is_refused(service: TokenService, start: object, end: object) -> None:
    with pytest.raises(InvalidRequestError):
        service.usage_report(ALICE, start=start, end=end)  # type: ignore[arg-type]


@given(span=st.integers(0, 365))
def test_any_range_of_up_to_366_days_is_taken(span: int) -> None:
    service = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())
    end = date.fromordinal(DAY.toordinal() + span)
    assert service.usage_report(ALICE, start=DAY, end=end).end == end


@pytest.mark.parametrize(
    ("group_by", "grouping"),
    [
        (("model", "day"), ("day", "model")),
        (["model"], ("model",)),
        ("day,model", ("day", "model")),
        ((), ()),
        ("", ()),
    ],
)
def test_group_by_is_any_subset_of_day_and_model(
    service: TokenService, group_by: object, grouping: tuple[str, ...]
) -> None:
    report = service.usage_report(ALICE, start=DAY, end=DAY, group_by=group_by)  # type: ignore[arg-type]
    assert report.group_by == grouping


@pytest.mark.parametrize("group_by", [("week",), ("day", "day"), "day,", [1], None])
def test_another_grouping_is_refused(service: TokenService, group_by: object) -> None:
    with pytest.raises(InvalidRequestError):
        service.usage_report(ALICE, start=DAY, end=DAY, group_by=group_by)  # type: ignore[arg-type]


def test_only_debits_and_settles_spend(service: TokenService) -> None:
    admin = ADMIN
    service.grant(admin, 100, subject="alice")
    service.set_plan(admin, "premium", subject="alice")
    service.reserve(ALICE, 10, hold_id="released")
    service.release(ALICE, "released")
    service.reserve(ALICE, 10, hold_id="settled")
    service.settle(ALICE, "settled", usage=ModelUsage("m", 2, 3))
    service.consume(ALICE, 4)
    report = service.usage_report(ALICE, start=DAY, end=DAY, group_by=("model",))
    assert report.rows == (UsageRow(None, "", 4, 1, 0, 0), UsageRow(None, "m", 5, 1, 2, 3))
    assert report.totals == UsageRow(None, None, 9, 2, 2, 3)


def test_an_unknown_plan_or_cursor_is_refused(service: TokenService) -> None:
    with pytest.raises(UnknownPlanError):
        service.list_accounts(ADMIN, plan="nope")
    for cursor in ("x", "12", ".alice", "1.", "-1.alice"):
        with pytest.raises(InvalidRequestError):
            service.top_spenders(ADMIN, start=DAY, end=DAY, cursor=cursor)


def test_the_async_facade_reports_too(service: TokenService) -> None:
    service.consume(ALICE, 3)
    facade = AsyncTokenService(service)

    async def read() -> tuple[int, int, int]:
        mine = await facade.usage_report(ALICE, start=DAY, end=DAY)
        everyone = await facade.usage_report_all(ADMIN, start=DAY, end=DAY)
        spenders = await facade.top_spenders(ADMIN, start=DAY, end=DAY)
        listed = await facade.list_accounts(ADMIN)
        assert [usage.subject for usage in listed.accounts] == ["alice"]
        return mine.totals.credits, everyone.totals.credits, spenders.rows[0].totals.credits

    assert asyncio.run(read()) == (3, 3, 3)
