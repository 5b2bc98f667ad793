"""Every hold rule as a worked example: reserve, settle below/at/above the hold and into
overage, release, lazy expiry, late settles, replays and each conflict, with periods,
terms and plan changes in between, the permissions, the context manager and the sweep.

Through :class:`TokenService` on the in-memory store, as a library user sees it; the
ledger assertions check the entries explain each change (fold == snapshot).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tokenplans import (
    MAX_OPEN_HOLDS,
    AlreadyProcessedError,
    EntryKind,
    Hold,
    HoldConflictError,
    HoldNotFoundError,
    HoldStatus,
    InsufficientTokensError,
    InvalidRequestError,
    PermissionDeniedError,
    PlanCatalog,
    Principal,
    TokenService,
    TooManyHoldsError,
    fold,
)
from tokenplans.testing import InMemoryStore, SettableClock

ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))
ALICE = Principal("alice")
BOB = Principal("bob")
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


def entries_of(store: InMemoryStore, subject: str = "alice") -> list:
    entries = list(reversed(store.history(subject, limit=10**6)))
    assert fold(entries) == store.load(subject)
    return entries


def kinds(store: InMemoryStore, subject: str = "alice") -> list[EntryKind]:
    return [e.kind for e in entries_of(store, subject)]


def numbers(service: TokenService, who: Principal = ALICE) -> tuple[int, int, int, int]:
    usage = service.usage(who)
    return usage.token_quota, usage.token_used, usage.token_held, usage.remaining


# -- reserve -----------------------------------------------------------------------------


def test_a_reserve_holds_tokens_and_remaining_leaves_them_out(
    service: TokenService, store: InMemoryStore
) -> None:
    hold = service.reserve(ALICE, 300, hold_id="call-1")
    assert (hold.hold_id, hold.status, hold.amount, hold.replayed) == (
        "call-1",
        HoldStatus.OPEN,
        300,
        False,
    )
    assert (hold.created_at, hold.expires_at) == (JAN_15, JAN_15 + timedelta(seconds=300))
    assert numbers(service) == (1000, 0, 300, 700)
    placed = entries_of(store)[-1]
    assert (
        placed.kind,
        getattr(placed.facts, "hold_id", None),
        placed.held_delta,
        placed.used_delta,
    ) == (
        EntryKind.HOLD_PLACED,
        "call-1",
        300,
        0,
    )


def test_a_reserve_beyond_remaining_is_refused_and_changes_nothing(
    service: TokenService, store: InMemoryStore
) -> None:
    service.reserve(ALICE, 800)
    before = store.load("alice")
    with pytest.raises(InsufficientTokensError) as refused:
        service.reserve(ALICE, 201)
    assert (refused.value.requested, refused.value.remaining) == (201, 200)
    assert store.load("alice") == before
    assert service.reserve(ALICE, 200).amount == 200  # exactly what remains is fine


def test_a_consume_cannot_spend_what_is_held(service: TokenService) -> None:
    service.reserve(ALICE, 900)
    with pytest.raises(InsufficientTokensError) as refused:
        service.consume(ALICE, 101)
    assert refused.value.remaining == 100


def test_generated_hold_ids_are_distinct_and_unguessable(service: TokenService) -> None:
    ids = {service.reserve(ALICE, 1).hold_id for _ in range(50)}
    assert len(ids) == 50
    assert all(hold_id.startswith("hold_") and len(hold_id) >= 25 for hold_id in ids)


@pytest.mark.parametrize("ttl", [0, -1, 86_401, 1.5, True, "300"])
def test_a_ttl_outside_one_second_to_a_day_is_invalid(service: TokenService, ttl: object) -> None:
    with pytest.raises(InvalidRequestError, match="ttl_seconds"):
        service.reserve(ALICE, 1, ttl_seconds=ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [1, 86_400])
def test_the_ttl_bounds_themselves_are_fine(service: TokenService, ttl: int) -> None:
    assert service.reserve(ALICE, 1, ttl_seconds=ttl).expires_at == JAN_15 + timedelta(seconds=ttl)


@pytest.mark.parametrize("hold_id", ["", "x" * 256, "nul\x00", "\udcff", 7])
def test_a_hold_id_must_be_one_to_255_storable_characters(
    service: TokenService, hold_id: object
) -> None:
    with pytest.raises(InvalidRequestError, match="hold_id"):
        service.reserve(ALICE, 1, hold_id=hold_id)  # type: ignore[arg-type]
    assert service.reserve(ALICE, 1, hold_id="é" * 255).hold_id == "é" * 255


def test_reserving_an_id_again_with_the_same_amount_replays_and_holds_nothing_more(
    service: TokenService, store: InMemoryStore
) -> None:
    first = service.reserve(ALICE, 300, hold_id="call-1")
    before = store.load("alice")
    again = service.reserve(ALICE, 300, hold_id="call-1", ttl_seconds=60)
    assert again == first
    assert again.replayed
    assert store.load("alice") == before


def test_reserving_an_id_again_with_another_amount_is_a_conflict(service: TokenService) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    with pytest.raises(HoldConflictError) as conflict:
        service.reserve(ALICE, 301, hold_id="call-1")
    assert conflict.value.hold.amount == 300
    assert numbers(service)[2] == 300


def test_reserving_the_id_of_a_closed_hold_is_already_processed(
    service: TokenService, store: InMemoryStore
) -> None:
    """A finished request never looks like a fresh success: a back end that checks only
    for a 2xx would otherwise call the model again with nothing held."""
    service.reserve(ALICE, 300, hold_id="call-1")
    settled = service.settle(ALICE, "call-1", 120)
    before = store.load("alice")
    with pytest.raises(AlreadyProcessedError) as refused:
        service.reserve(ALICE, 300, hold_id="call-1")
    assert refused.value.hold == settled
    assert refused.value.hold.status is HoldStatus.SETTLED
    assert store.load("alice") == before


@pytest.mark.parametrize("amount", [300, 301, 10**6])
def test_a_closed_holds_id_answers_by_that_hold_even_where_no_new_hold_would_fit(
    service: TokenService, store: InMemoryStore, amount: int
) -> None:
    """The id of a closed hold is answered by that hold (already processed, or a conflict
    for another amount), never by what a new hold would meet: an account with fewer
    credits left than asked must not turn a replay into "insufficient tokens"."""
    service.reserve(ALICE, 300, hold_id="call-1")
    service.settle(ALICE, "call-1", 300)
    service.consume(ALICE, numbers(service)[3])  # nothing left
    before = store.load("alice")
    expected = AlreadyProcessedError if amount == 300 else HoldConflictError
    with pytest.raises(expected) as refused:
        service.reserve(ALICE, amount, hold_id="call-1")
    assert refused.value.hold.status is HoldStatus.SETTLED  # type: ignore[attr-defined]
    assert store.load("alice") == before


def test_at_most_a_thousand_open_holds_per_account(clock: SettableClock) -> None:
    catalog = PlanCatalog.from_mapping({"big": {"price": 0, "tokens": 10**6}})
    service = TokenService(InMemoryStore(), catalog, clock)
    for n in range(MAX_OPEN_HOLDS):
        service.reserve(ALICE, 1, hold_id=f"h{n}")
    with pytest.raises(TooManyHoldsError) as refused:
        service.reserve(ALICE, 1)
    assert refused.value.limit == MAX_OPEN_HOLDS
    service.release(ALICE, "h0")
    assert service.reserve(ALICE, 1).is_open  # one closed: room for one more


# -- settle ------------------------------------------------------------------------------


def test_settling_below_the_hold_frees_the_rest(
    service: TokenService, store: InMemoryStore
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    settled = service.settle(ALICE, "call-1", 120)
    assert (settled.status, settled.settled, settled.overage, settled.late) == (
        HoldStatus.SETTLED,
        120,
        0,
        False,
    )
    assert settled.closed_at == JAN_15
    assert numbers(service) == (1000, 120, 0, 880)
    entry = entries_of(store)[-1]
    assert (
        entry.kind,
        getattr(entry.facts, "hold_id", None),
        entry.used_delta,
        entry.held_delta,
        getattr(entry.facts, "overage", None),
    ) == (
        EntryKind.HOLD_SETTLED,
        "call-1",
        120,
        -300,
        0,
    )


def test_settling_at_the_hold_uses_exactly_it(service: TokenService) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    assert service.settle(ALICE, "call-1", 300).overage == 0
    assert numbers(service) == (1000, 300, 0, 700)


def test_settling_with_zero_uses_nothing(service: TokenService) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    assert service.settle(ALICE, "call-1", 0).settled == 0
    assert numbers(service) == (1000, 0, 0, 1000)


def test_settling_above_the_hold_takes_the_excess_from_what_remains(
    service: TokenService,
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    settled = service.settle(ALICE, "call-1", 500)
    assert settled.overage == 0
    assert numbers(service) == (1000, 500, 0, 500)


def test_a_settle_above_hold_and_remaining_succeeds_and_records_the_overage(
    service: TokenService, store: InMemoryStore
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    service.reserve(ALICE, 400, hold_id="call-2")  # another open hold: never eaten into
    service.consume(ALICE, 200)  # remaining now 1000 - 200 - 700 = 100
    settled = service.settle(ALICE, "call-1", 450)
    # 300 held + 100 remaining cover 400 of it; 50 are beyond the quota.
    assert settled.overage == 50
    assert numbers(service) == (1000, 650, 400, 0)
    assert getattr(entries_of(store)[-1].facts, "overage", None) == 50
    service.settle(ALICE, "call-2", 400)  # the other hold is intact
    assert numbers(service) == (1000, 1050, 0, 0)


def test_settling_a_negative_or_non_integer_amount_is_invalid(service: TokenService) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    for amount in (-1, 1.0, None, True):
        with pytest.raises(InvalidRequestError):
            service.settle(ALICE, "call-1", amount)  # type: ignore[arg-type]
    assert service.hold(ALICE, "call-1").is_open


# -- release -----------------------------------------------------------------------------


def test_a_release_frees_the_whole_hold(service: TokenService, store: InMemoryStore) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    released = service.release(ALICE, "call-1")
    assert (released.status, released.settled, released.closed_at) == (
        HoldStatus.RELEASED,
        None,
        JAN_15,
    )
    assert numbers(service) == (1000, 0, 0, 1000)
    assert kinds(store)[-1] is EntryKind.HOLD_RELEASED


# -- expiry ------------------------------------------------------------------------------


def test_an_open_hold_expires_lazily_stamped_at_its_expiry(
    service: TokenService, store: InMemoryStore, clock: SettableClock
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1", ttl_seconds=60)
    clock.advance(seconds=59)
    assert numbers(service)[2] == 300
    clock.advance(seconds=1)  # at expires_at exactly: expired
    assert numbers(service) == (1000, 0, 0, 1000)
    assert service.holds(ALICE) == []
    seen = service.hold(ALICE, "call-1")
    assert (seen.status, seen.closed_at) == (HoldStatus.EXPIRED, JAN_15 + timedelta(seconds=60))
    assert store.load("alice").token_held == 300  # reads never write
    service.consume(ALICE, 1)  # the next change writes the expiry, at its instant
    expired = entries_of(store)[-2]
    assert (
        expired.kind,
        expired.at,
        getattr(expired.facts, "hold_id", None),
        expired.held_delta,
    ) == (
        EntryKind.HOLD_EXPIRED,
        JAN_15 + timedelta(seconds=60),
        "call-1",
        -300,
    )
    assert store.find_hold("alice", "call-1").status is HoldStatus.EXPIRED


def test_a_settle_after_expiry_is_accepted_late_and_charged(
    service: TokenService, store: InMemoryStore, clock: SettableClock
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1", ttl_seconds=60)
    clock.advance(minutes=5)
    settled = service.settle(ALICE, "call-1", 250)
    assert (settled.status, settled.settled, settled.late, settled.overage) == (
        HoldStatus.SETTLED,
        250,
        True,
        0,
    )
    assert numbers(service) == (1000, 250, 0, 750)
    assert kinds(store)[-2:] == [EntryKind.HOLD_EXPIRED, EntryKind.HOLD_SETTLED]
    # Written once, from open to its final state, in the commit that expired it.
    assert store.find_hold("alice", "call-1") == settled


def test_a_late_settle_beyond_what_remains_records_overage(
    service: TokenService, clock: SettableClock
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1", ttl_seconds=60)
    clock.advance(minutes=5)
    service.consume(ALICE, 900)  # the expired hold freed its 300: 100 remain
    assert service.settle(ALICE, "call-1", 250).overage == 150
    assert numbers(service) == (1000, 1150, 0, 0)


def test_a_release_after_expiry_returns_the_expired_hold_and_changes_nothing(
    service: TokenService, store: InMemoryStore, clock: SettableClock
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1", ttl_seconds=60)
    clock.advance(minutes=5)
    service.consume(ALICE, 1)
    before = store.load("alice")
    released = service.release(ALICE, "call-1")
    assert (released.status, released.replayed) == (HoldStatus.EXPIRED, True)
    assert store.load("alice") == before


def test_holds_expire_in_time_order_interleaved_with_month_resets(
    service: TokenService, store: InMemoryStore, clock: SettableClock
) -> None:
    clock.set(datetime(2026, 1, 31, 23, 0, tzinfo=UTC))
    service.reserve(ALICE, 100, hold_id="before-reset", ttl_seconds=1800)  # 23:30 Jan 31
    service.reserve(ALICE, 200, hold_id="after-reset", ttl_seconds=86_400)  # 23:00 Feb 1
    clock.set(datetime(2026, 3, 15, tzinfo=UTC))
    service.consume(ALICE, 1)
    written = entries_of(store)[-5:]
    assert [(e.kind, e.at) for e in written] == [
        (EntryKind.HOLD_EXPIRED, datetime(2026, 1, 31, 23, 30, tzinfo=UTC)),
        (EntryKind.PERIOD_RESET, datetime(2026, 2, 1, tzinfo=UTC)),
        (EntryKind.HOLD_EXPIRED, datetime(2026, 2, 1, 23, 0, tzinfo=UTC)),
        (EntryKind.PERIOD_RESET, datetime(2026, 3, 1, tzinfo=UTC)),
        (EntryKind.DEBITED, datetime(2026, 3, 15, tzinfo=UTC)),
    ]
    # Each expiry's snapshot is the account as it was at that instant.
    assert written[0].after.period_start == datetime(2026, 1, 1, tzinfo=UTC)
    assert written[2].after.period_start == datetime(2026, 2, 1, tzinfo=UTC)
    assert numbers(service) == (1000, 1, 0, 999)


# -- holds across periods, terms and plan changes ----------------------------------------


def test_an_open_hold_survives_a_month_reset_and_is_held_in_the_new_month(
    service: TokenService, clock: SettableClock
) -> None:
    clock.set(datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    service.consume(ALICE, 500)
    service.reserve(ALICE, 300, hold_id="call-1", ttl_seconds=3600)
    clock.set(datetime(2026, 2, 1, 0, 10, tzinfo=UTC))
    assert numbers(service) == (1000, 0, 300, 700)
    service.settle(ALICE, "call-1", 280)
    assert numbers(service) == (1000, 280, 0, 720)


def test_an_open_hold_survives_term_expiry_and_an_upgrade_carries_it(
    service: TokenService, clock: SettableClock
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1", ttl_seconds=86_400)
    upgraded = service.set_plan(ADMIN, "standard", subject="alice").usage
    # Carry-over: the 700 remaining, and the 300 still held, move with the account.
    assert (upgraded.token_quota, upgraded.token_held, upgraded.remaining) == (11000, 300, 10700)
    service.settle(ALICE, "call-1", 300)
    assert numbers(service) == (11000, 300, 0, 10700)  # as if settled before the upgrade

    clock.set(upgraded.plan_end_at - timedelta(hours=1))
    service.reserve(ALICE, 50, hold_id="call-2", ttl_seconds=86_400)
    clock.advance(hours=2)  # the term ends with the hold open
    assert service.usage(ALICE).plan == "basic"
    assert numbers(service) == (1000, 0, 50, 950)


def test_an_upgrade_never_lowers_remaining_with_holds_open(service: TokenService) -> None:
    service.reserve(ALICE, 900)
    service.consume(ALICE, 100)  # remaining 0
    usage = service.set_plan(ADMIN, "standard", subject="alice").usage
    assert usage.remaining == 10000


def test_tokens_held_through_a_downgrade_do_not_come_back_through_an_upgrade(
    service: TokenService,
) -> None:
    service.set_plan(ADMIN, "premium", subject="alice")  # 50,000 + 1,000 carried over
    service.reserve(ALICE, 51_000, hold_id="call-1", ttl_seconds=3600)
    assert service.set_plan(ALICE, "basic").usage.token_quota == 1000  # held: 51,000
    upgraded = service.set_plan(ADMIN, "standard", subject="alice").usage  # a payment
    # What basic still backed (1,000, the hold within it), not the 51,000 held on top.
    assert (upgraded.token_quota, upgraded.token_held, upgraded.remaining) == (11000, 51000, 0)
    service.release(ALICE, "call-1")
    assert numbers(service) == (11000, 0, 0, 11000)


def test_a_grant_held_through_a_month_reset_does_not_come_back_through_an_upgrade(
    service: TokenService, clock: SettableClock
) -> None:
    clock.set(datetime(2026, 1, 31, 23, 0, tzinfo=UTC))
    service.grant(ADMIN, 20_000, subject="alice")
    service.reserve(ALICE, 21_000, hold_id="call-1", ttl_seconds=86_400)
    clock.set(datetime(2026, 2, 1, 1, 0, tzinfo=UTC))  # the grant lapsed; the hold did not
    assert numbers(service) == (1000, 0, 21000, 0)
    upgraded = service.set_plan(ADMIN, "standard", subject="alice").usage
    assert (upgraded.token_quota, upgraded.token_held) == (11000, 21000)
    # The in-flight call is honoured when it settles, out of what the account has now.
    service.settle(ALICE, "call-1", 21_000)
    assert numbers(service) == (11000, 21000, 0, 0)
    with pytest.raises(InsufficientTokensError):
        service.consume(ALICE, 1)


def test_an_upgrade_carries_over_what_remains_and_what_is_held_within_the_quota(
    service: TokenService,
) -> None:
    service.consume(ALICE, 200)
    service.reserve(ALICE, 300, hold_id="call-1")
    upgraded = service.set_plan(ADMIN, "standard", subject="alice").usage
    assert (upgraded.token_quota, upgraded.token_held, upgraded.remaining) == (10800, 300, 10500)


# -- replays and conflicts ---------------------------------------------------------------


def test_the_same_settle_again_returns_the_first_result_and_changes_nothing(
    service: TokenService, store: InMemoryStore, clock: SettableClock
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    first = service.settle(ALICE, "call-1", 120)
    before = store.load("alice")
    clock.advance(minutes=10)
    again = service.settle(ALICE, "call-1", 120)
    assert again == first
    assert again.replayed
    assert store.load("alice") == before


def test_releasing_again_returns_the_first_result(
    service: TokenService, store: InMemoryStore
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    first = service.release(ALICE, "call-1")
    before = store.load("alice")
    assert service.release(ALICE, "call-1") == first
    assert store.load("alice") == before


@pytest.mark.parametrize(
    ("close", "then", "final"),
    [
        ("release", lambda s: s.settle(ALICE, "call-1", 10), HoldStatus.RELEASED),
        ("settle", lambda s: s.release(ALICE, "call-1"), HoldStatus.SETTLED),
        ("settle", lambda s: s.settle(ALICE, "call-1", 11), HoldStatus.SETTLED),
    ],
    ids=["settle after release", "release after settle", "settle with another amount"],
)
def test_another_close_of_a_closed_hold_is_a_conflict_naming_its_final_state(
    service: TokenService, store: InMemoryStore, close: str, then, final: HoldStatus
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    if close == "release":
        service.release(ALICE, "call-1")
    else:
        service.settle(ALICE, "call-1", 10)
    before = store.load("alice")
    with pytest.raises(HoldConflictError) as conflict:
        then(service)
    assert conflict.value.hold.status is final
    assert final.value in str(conflict.value)
    assert store.load("alice") == before


def test_a_late_settle_then_a_release_is_a_conflict(
    service: TokenService, clock: SettableClock
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1", ttl_seconds=60)
    clock.advance(minutes=5)
    service.settle(ALICE, "call-1", 10)
    with pytest.raises(HoldConflictError):
        service.release(ALICE, "call-1")
    assert service.settle(ALICE, "call-1", 10).replayed


def test_every_hold_closes_once_in_the_ledger(service: TokenService, store: InMemoryStore) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    for _ in range(3):
        service.settle(ALICE, "call-1", 120)
    closing = [e for e in entries_of(store) if getattr(e.facts, "hold_id", None) == "call-1"]
    assert [e.kind for e in closing] == [EntryKind.HOLD_PLACED, EntryKind.HOLD_SETTLED]


# -- reads and permissions ---------------------------------------------------------------


def test_holds_lists_the_open_ones_oldest_first_and_hold_reads_any_status(
    service: TokenService, clock: SettableClock
) -> None:
    service.reserve(ALICE, 10, hold_id="a")
    clock.advance(seconds=1)
    service.reserve(ALICE, 20, hold_id="b")
    service.reserve(ALICE, 30, hold_id="c")
    service.release(ALICE, "b")
    assert [h.hold_id for h in service.holds(ALICE)] == ["a", "c"]
    assert service.hold(ALICE, "b").status is HoldStatus.RELEASED
    with pytest.raises(HoldNotFoundError) as missing:
        service.hold(ALICE, "nope")
    assert missing.value.hold_id == "nope"


def test_another_subjects_hold_is_not_found_and_cannot_be_settled(
    service: TokenService, store: InMemoryStore
) -> None:
    service.reserve(ALICE, 300, hold_id="call-1")
    for call in (
        lambda: service.hold(BOB, "call-1"),
        lambda: service.settle(BOB, "call-1", 1),
        lambda: service.release(BOB, "call-1"),
    ):
        with pytest.raises(HoldNotFoundError):
            call()
    # Naming alice's subject explicitly is refused outright.
    for call in (
        lambda: service.reserve(BOB, 1, subject="alice"),
        lambda: service.settle(BOB, "call-1", 1, subject="alice"),
        lambda: service.release(BOB, "call-1", subject="alice"),
        lambda: service.holds(BOB, subject="alice"),
        lambda: service.hold(BOB, "call-1", subject="alice"),
    ):
        with pytest.raises(PermissionDeniedError):
            call()
    assert service.hold(ALICE, "call-1").is_open
    # Hold ids are scoped to their subject: bob may use the same id for his own hold.
    assert service.reserve(BOB, 5, hold_id="call-1").amount == 5
    assert store.find_hold("alice", "call-1").amount == 300


def test_an_admin_reserves_and_settles_for_any_subject(service: TokenService) -> None:
    service.reserve(ADMIN, 300, hold_id="call-1", subject="alice")
    assert [h.hold_id for h in service.holds(ADMIN, subject="alice")] == ["call-1"]
    service.settle(ADMIN, "call-1", 100, subject="alice")
    assert numbers(service) == (1000, 100, 0, 900)


# -- the context manager -----------------------------------------------------------------


def test_holding_settles_with_what_the_block_says(service: TokenService) -> None:
    with service.holding(ALICE, 300) as reservation:
        assert numbers(service)[2] == 300
        settled = reservation.settle(120)
    assert settled.status is HoldStatus.SETTLED
    assert numbers(service) == (1000, 120, 0, 880)


def test_holding_releases_when_the_block_raises(service: TokenService) -> None:
    with pytest.raises(RuntimeError, match="model down"), service.holding(ALICE, 300) as held:
        raise RuntimeError("model down")
    assert service.hold(ALICE, held.hold_id).status is HoldStatus.RELEASED
    assert numbers(service) == (1000, 0, 0, 1000)


def test_holding_releases_when_left_without_a_settle(service: TokenService) -> None:
    with service.holding(ALICE, 300, hold_id="call-1"):
        pass
    assert service.hold(ALICE, "call-1").status is HoldStatus.RELEASED


def test_holding_refuses_like_reserve_when_short(service: TokenService) -> None:
    with pytest.raises(InsufficientTokensError), service.holding(ALICE, 5000):
        pytest.fail("the block must not run")  # pragma: no cover


# -- the sweep ---------------------------------------------------------------------------


def test_the_sweep_writes_due_expiries_of_untouched_accounts_and_nothing_else(
    service: TokenService, store: InMemoryStore, clock: SettableClock
) -> None:
    service.reserve(ALICE, 300, ttl_seconds=60)
    service.reserve(BOB, 300, ttl_seconds=3600)
    clock.advance(minutes=2)
    with pytest.raises(PermissionDeniedError):
        service.sweep_expired_holds(ALICE)
    assert service.sweep_expired_holds(ADMIN) == ["alice"]
    assert store.load("alice").token_held == 0
    assert kinds(store)[-1] is EntryKind.HOLD_EXPIRED
    assert store.load("bob").token_held == 300
    assert service.sweep_expired_holds(ADMIN) == []


def test_a_hold_is_a_plain_value() -> None:
    hold = Hold("alice", "alice", "h", 1, JAN_15, JAN_15 + timedelta(seconds=1))
    assert hold.as_of(JAN_15) is hold
    assert hold.as_of(JAN_15 + timedelta(seconds=1)).status is HoldStatus.EXPIRED
