"""Every quota rule (docs/quotas.md: "How quotas work") as a worked example, with the original
service's numbers.

The examples go through :class:`TokenService` on the in-memory store, so they state what
a library user sees; the ledger assertions check the entries explain each change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from strategies import update_directly

from tokenplans import (
    MAX_AMOUNT,
    Account,
    EntryKind,
    IdempotencyConflictError,
    InsufficientTokensError,
    InvalidRequestError,
    PlanCatalog,
    Principal,
    TokenService,
    fold,
)
from tokenplans._rules.decisions import Decision
from tokenplans._rules.quota import renew
from tokenplans.testing import InMemoryStore, SettableClock

ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))
ALICE = Principal("alice")
JAN_15 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(JAN_15)


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def service(store: InMemoryStore, clock: SettableClock) -> TokenService:
    return TokenService(store, PlanCatalog.default(), clock)


def whole_history(service: TokenService, subject: str) -> list:
    """Every entry, newest first, through the public paging API."""
    entries: list = []
    cursor = None
    while True:
        page = service.history(ADMIN, subject=subject, cursor=cursor, limit=200)
        entries.extend(page.entries)
        if page.next_cursor is None:
            return entries
        cursor = page.next_cursor


def renew_current_plan(service: TokenService, subject: str, payment_id: str) -> Account:
    """A paid renewal, as the payments use case applies it: rules.renew inside update."""

    def decide(account: Account, now: datetime) -> Decision[Account]:
        plan = service.catalog.get(account.plan_id)
        change = renew(account, plan, now, payment_id=payment_id)
        return Decision(change, change.account)

    return update_directly(service, subject, decide)


# --------------------------------------------------------------------------- 1. opening


def test_an_unknown_subject_reads_as_a_fresh_basic_account_for_this_calendar_month(
    service: TokenService, store: InMemoryStore
) -> None:
    usage = service.usage(ALICE)

    assert (usage.plan, usage.token_quota, usage.token_used, usage.remaining) == (
        "basic",
        1000,
        0,
        1000,
    )
    assert usage.plan_end_at is None
    assert usage.period_start == datetime(2026, 1, 1, tzinfo=UTC)
    assert usage.period_end == datetime(2026, 2, 1, tzinfo=UTC)
    assert store.load("alice") is None  # reads never write


def test_the_first_change_writes_the_opening_entry_with_it(
    service: TokenService, store: InMemoryStore
) -> None:
    service.consume(ALICE, 300)

    kinds = [entry.kind for entry in reversed(whole_history(service, "alice"))]
    assert kinds == [EntryKind.OPENED, EntryKind.DEBITED]
    assert store.load("alice") == fold(reversed(whole_history(service, "alice")))


# --------------------------------------------------------------------------- 2. periods


def test_a_new_calendar_month_resets_used_and_quota(
    service: TokenService, clock: SettableClock
) -> None:
    service.consume(ALICE, 300)
    service.grant(ADMIN, 500, subject="alice")

    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    usage = service.usage(ALICE)

    assert (usage.token_quota, usage.token_used, usage.remaining) == (1000, 0, 1000)
    assert usage.period_start == datetime(2026, 2, 1, tzinfo=UTC)
    assert usage.period_end == datetime(2026, 3, 1, tzinfo=UTC)


def test_the_last_second_of_a_month_is_still_in_it(
    service: TokenService, clock: SettableClock
) -> None:
    service.consume(ALICE, 300)

    clock.set(datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC))

    assert service.usage(ALICE).token_used == 300


def test_an_account_idle_for_exactly_12_months_resets(
    service: TokenService, clock: SettableClock
) -> None:
    """The reference compared the month only, so January to January never reset."""
    service.consume(ALICE, 300)

    clock.set(JAN_15.replace(year=2027))
    usage = service.usage(ALICE)

    assert (usage.token_used, usage.remaining) == (0, 1000)
    assert usage.period_start == datetime(2027, 1, 1, tzinfo=UTC)


def test_an_account_idle_for_ten_years_writes_one_reset_at_the_first_boundary(
    service: TokenService, clock: SettableClock, store: InMemoryStore
) -> None:
    service.consume(ALICE, 300)

    clock.set(datetime(2036, 3, 10, tzinfo=UTC))
    service.consume(ALICE, 1)

    newest_first = whole_history(service, "alice")
    assert [entry.kind for entry in newest_first[:2]] == [
        EntryKind.DEBITED,
        EntryKind.PERIOD_RESET,
    ]
    assert newest_first[1].at == datetime(2026, 2, 1, tzinfo=UTC)
    assert newest_first[1].after.period_start == datetime(2036, 3, 1, tzinfo=UTC)
    assert store.load("alice") == fold(reversed(newest_first))
    assert service.usage(ALICE).token_used == 1


def test_there_is_no_calendar_reset_inside_a_paid_term(
    service: TokenService, clock: SettableClock
) -> None:
    service.set_plan(ADMIN, "standard", subject="alice")
    service.consume(ALICE, 4000)

    clock.set(datetime(2026, 2, 10, tzinfo=UTC))  # a new month, still inside the term

    assert service.usage(ALICE).token_used == 4000


# --------------------------------------------------------------------------- 3. expiry


def test_an_ended_term_falls_back_to_basic_for_the_month_containing_its_end(
    service: TokenService, clock: SettableClock
) -> None:
    service.set_plan(ADMIN, "premium", subject="alice")
    service.consume(ALICE, 20_000)
    end = JAN_15 + timedelta(days=30)  # 2026-02-14 12:00

    clock.set(end)
    usage = service.usage(ALICE)

    assert (usage.plan, usage.token_quota, usage.token_used) == ("basic", 1000, 0)
    assert usage.plan_end_at is None
    assert (usage.period_start, usage.period_end) == (
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
    )


def test_a_term_is_still_running_one_microsecond_before_its_end(
    service: TokenService, clock: SettableClock
) -> None:
    service.set_plan(ADMIN, "premium", subject="alice")

    clock.set(JAN_15 + timedelta(days=30) - timedelta(microseconds=1))

    assert service.usage(ALICE).plan == "premium"


def test_a_term_ending_exactly_on_a_month_boundary_falls_into_the_new_month(
    service: TokenService, clock: SettableClock
) -> None:
    clock.set(datetime(2026, 1, 30, tzinfo=UTC))  # + 30 days = 2026-03-01 00:00
    service.set_plan(ADMIN, "standard", subject="alice")
    service.consume(ALICE, 500)

    clock.set(datetime(2026, 3, 1, tzinfo=UTC))
    usage = service.usage(ALICE)

    assert (usage.plan, usage.token_used) == ("basic", 0)
    assert usage.period_start == datetime(2026, 3, 1, tzinfo=UTC)
    assert usage.period_end == datetime(2026, 4, 1, tzinfo=UTC)


def test_an_expired_term_then_idle_months_ends_on_basic_in_the_current_month(
    service: TokenService, clock: SettableClock, store: InMemoryStore
) -> None:
    service.set_plan(ADMIN, "premium", subject="alice")

    clock.set(datetime(2027, 7, 4, tzinfo=UTC))
    service.consume(ALICE, 10)

    kinds = [entry.kind for entry in whole_history(service, "alice")[:3]]
    assert kinds == [EntryKind.DEBITED, EntryKind.PERIOD_RESET, EntryKind.TERM_EXPIRED]
    usage = service.usage(ALICE)
    assert (usage.plan, usage.token_quota, usage.token_used) == ("basic", 1000, 10)
    assert usage.period_start == datetime(2027, 7, 1, tzinfo=UTC)
    assert store.load("alice") == fold(reversed(whole_history(service, "alice")))


# --------------------------------------------------------------------------- 5-7. plan changes


def test_basic_with_300_used_upgrades_to_standard_with_carry_over_then_downgrades(
    service: TokenService, clock: SettableClock
) -> None:
    service.consume(ALICE, 300)

    upgraded = service.set_plan(ADMIN, "standard", subject="alice")

    assert upgraded.message == "upgraded to standard with carry-over"
    usage = upgraded.usage
    assert (usage.plan, usage.token_quota, usage.token_used, usage.remaining) == (
        "standard",
        10700,
        0,
        10700,
    )
    assert usage.plan_end_at == JAN_15 + timedelta(days=30)
    assert (usage.period_start, usage.period_end) == (JAN_15, JAN_15 + timedelta(days=30))

    clock.advance(days=3)
    service.consume(ALICE, 2000)
    downgraded = service.set_plan(ALICE, "basic", reset_used=False)

    assert downgraded.message == "downgraded to basic"
    usage = downgraded.usage
    assert (usage.plan, usage.token_quota, usage.token_used, usage.remaining) == (
        "basic",
        1000,
        2000,
        0,
    )
    assert usage.plan_end_at is None
    assert usage.period_start == datetime(2026, 1, 1, tzinfo=UTC)


def test_an_upgrade_on_january_31st_starts_a_30_day_term_ending_march_2nd(
    service: TokenService, clock: SettableClock
) -> None:
    clock.set(datetime(2026, 1, 31, 18, 0, tzinfo=UTC))

    usage = service.set_plan(ADMIN, "premium", subject="alice").usage

    assert usage.plan_end_at == datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
    assert usage.token_quota == 51000


def test_an_upgrade_over_a_leap_day_counts_it(service: TokenService, clock: SettableClock) -> None:
    clock.set(datetime(2028, 2, 15, tzinfo=UTC))

    usage = service.set_plan(ADMIN, "standard", subject="alice").usage

    assert usage.plan_end_at == datetime(2028, 3, 16, tzinfo=UTC)


def test_an_upgrade_on_a_leap_day_then_a_year_idle_resets_on_basic(
    service: TokenService, clock: SettableClock
) -> None:
    clock.set(datetime(2028, 2, 29, 12, tzinfo=UTC))
    service.set_plan(ADMIN, "standard", subject="alice")

    clock.set(datetime(2029, 2, 28, 12, tzinfo=UTC))
    usage = service.usage(ALICE)

    assert (usage.plan, usage.token_quota, usage.token_used) == ("basic", 1000, 0)
    assert usage.period_start == datetime(2029, 2, 1, tzinfo=UTC)


def test_premium_to_premium_is_plan_confirmed_and_keeps_quota_and_used(
    service: TokenService,
) -> None:
    service.set_plan(ADMIN, "premium", subject="alice")
    service.consume(ALICE, 700)

    confirmed = service.set_plan(ALICE, "premium")

    assert confirmed.message == "plan confirmed"
    assert (confirmed.usage.token_quota, confirmed.usage.token_used) == (51000, 700)
    assert confirmed.usage.plan_end_at == JAN_15 + timedelta(days=30)


def test_an_admin_confirming_a_plan_with_reset_used_zeroes_used_only(
    service: TokenService,
) -> None:
    service.consume(ALICE, 700)

    confirmed = service.set_plan(ADMIN, "basic", subject="alice", reset_used=True)

    assert confirmed.message == "plan confirmed"
    assert (confirmed.usage.token_quota, confirmed.usage.token_used) == (1000, 0)


def test_a_downgrade_between_paid_plans_keeps_the_term(service: TokenService) -> None:
    service.set_plan(ADMIN, "premium", subject="alice")
    service.consume(ALICE, 40_000)

    downgraded = service.set_plan(ADMIN, "standard", subject="alice", reset_used=True)

    assert downgraded.message == "downgraded to standard"
    usage = downgraded.usage
    assert (usage.token_quota, usage.token_used, usage.remaining) == (10000, 0, 10000)
    assert usage.plan_end_at == JAN_15 + timedelta(days=30)


def test_a_downgrade_can_leave_used_above_quota_but_remaining_stays_zero(
    service: TokenService,
) -> None:
    service.set_plan(ADMIN, "premium", subject="alice")
    service.consume(ALICE, 30_000)

    usage = service.set_plan(ALICE, "basic").usage

    assert (usage.token_quota, usage.token_used, usage.remaining) == (1000, 30_000, 0)
    with pytest.raises(InsufficientTokensError):
        service.consume(ALICE, 1)


# --------------------------------------------------------------------------- 8. debit


def test_a_debit_of_exactly_remaining_succeeds_and_leaves_zero(service: TokenService) -> None:
    receipt = service.consume(ALICE, 1000)

    assert (receipt.usage.token_used, receipt.usage.remaining) == (1000, 0)
    assert receipt.replayed is False


def test_a_debit_one_above_remaining_is_refused_with_the_balance_and_changes_nothing(
    service: TokenService, store: InMemoryStore
) -> None:
    service.consume(ALICE, 300)
    before = store.load("alice")

    with pytest.raises(InsufficientTokensError) as refused:
        service.consume(ALICE, 701)

    assert (refused.value.remaining, refused.value.requested) == (700, 701)
    assert store.load("alice") == before


@pytest.mark.parametrize("amount", [0, -1, -(10**6), True, False, MAX_AMOUNT + 1, 1.5, "10"])
def test_amounts_outside_1_to_10_to_the_12_are_refused_as_invalid(
    service: TokenService, store: InMemoryStore, amount: object
) -> None:
    with pytest.raises(InvalidRequestError):
        service.consume(ALICE, amount)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        service.grant(ADMIN, amount, subject="alice")  # type: ignore[arg-type]

    assert store.load("alice") is None


def test_the_largest_amount_is_accepted_by_a_grant_and_a_debit(service: TokenService) -> None:
    service.grant(ADMIN, MAX_AMOUNT, subject="alice")

    assert service.consume(ALICE, MAX_AMOUNT).usage.remaining == 1000


@pytest.mark.parametrize("key", ["", "k" * 256, 42])
def test_idempotency_keys_must_be_1_to_255_characters(service: TokenService, key: object) -> None:
    with pytest.raises(InvalidRequestError):
        service.consume(ALICE, 1, idempotency_key=key)  # type: ignore[arg-type]

    assert service.consume(ALICE, 1, idempotency_key="k" * 255).usage.token_used == 1


def test_a_retried_debit_with_the_same_key_returns_the_first_receipt_and_debits_nothing(
    service: TokenService, store: InMemoryStore, clock: SettableClock
) -> None:
    first = service.consume(ALICE, 300, idempotency_key="chat-42")
    stored = store.load("alice")
    clock.advance(minutes=5)

    again = service.consume(ALICE, 300, idempotency_key="chat-42")

    assert again == attrs.evolve(first, replayed=True)
    assert store.load("alice") == stored
    assert service.usage(ALICE).token_used == 300


def test_the_same_key_with_another_amount_is_a_conflict(
    service: TokenService, store: InMemoryStore
) -> None:
    service.consume(ALICE, 300, idempotency_key="chat-42")
    stored = store.load("alice")

    with pytest.raises(IdempotencyConflictError) as conflict:
        service.consume(ALICE, 301, idempotency_key="chat-42")

    assert (conflict.value.first_amount, conflict.value.amount) == (300, 301)
    assert store.load("alice") == stored


def test_keys_belong_to_one_subject(service: TokenService) -> None:
    service.consume(ALICE, 300, idempotency_key="chat-42")

    bob = service.consume(Principal("bob"), 500, idempotency_key="chat-42")

    assert (bob.replayed, bob.usage.token_used) == (False, 500)


def test_a_refused_debit_leaves_no_trace_so_its_retry_is_judged_afresh(
    service: TokenService,
) -> None:
    with pytest.raises(InsufficientTokensError):
        service.consume(ALICE, 1500, idempotency_key="big-job")
    service.grant(ADMIN, 1000, subject="alice")

    retried = service.consume(ALICE, 1500, idempotency_key="big-job")

    assert (retried.replayed, retried.usage.token_used, retried.usage.remaining) == (
        False,
        1500,
        500,
    )


# --------------------------------------------------------------------------- 9. grant


def test_a_grant_adds_to_this_period_and_lapses_with_it(
    service: TokenService, clock: SettableClock
) -> None:
    usage = service.grant(ADMIN, 250, subject="alice")
    assert (usage.token_quota, usage.remaining) == (1250, 1250)

    clock.set(datetime(2026, 2, 1, tzinfo=UTC))

    assert service.usage(ALICE).token_quota == 1000


def test_a_grant_inside_a_term_lapses_when_the_term_ends(
    service: TokenService, clock: SettableClock
) -> None:
    service.set_plan(ADMIN, "standard", subject="alice")
    service.grant(ADMIN, 5000, subject="alice")
    assert service.usage(ALICE).token_quota == 16000

    clock.set(JAN_15 + timedelta(days=30))

    assert (service.usage(ALICE).plan, service.usage(ALICE).token_quota) == ("basic", 1000)


# --------------------------------------------------------------------------- 10. renewal


def test_a_paid_renewal_extends_the_term_from_its_end_and_adds_the_plan_tokens(
    service: TokenService, clock: SettableClock
) -> None:
    service.set_plan(ADMIN, "standard", subject="alice")
    service.consume(ALICE, 4000)
    clock.advance(days=20)

    renewed = renew_current_plan(service, "alice", "pay_1")

    assert renewed.plan_end_at == JAN_15 + timedelta(days=60)
    assert renewed.period_start == JAN_15
    assert (renewed.token_quota, renewed.token_used, renewed.remaining) == (21000, 4000, 17000)
    newest = whole_history(service, "alice")[0]
    assert (newest.kind, getattr(newest.facts, "payment_id", None)) == (EntryKind.RENEWED, "pay_1")

    clock.set(JAN_15 + timedelta(days=45))  # past the first end, inside the extension
    assert service.usage(ALICE).plan == "standard"


def test_renewing_the_default_plan_is_refused(service: TokenService) -> None:
    with pytest.raises(InvalidRequestError):
        renew_current_plan(service, "alice", "pay_1")
