"""Credit lots (docs/credit-lots.md): the worked examples of the docs page, the pin that an
account with only its plan lot reads as before lots, and properties over random catalogs
with rollover: lazy roll-forward == step by step, the burn order of every draw, and
nothing spent beyond what was made available plus recorded overage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenplans import (
    EntryKind,
    InvalidRequestError,
    LotConflictError,
    LotNotFoundError,
    LotSource,
    LotStatus,
    PlanCatalog,
    Principal,
    TokenService,
    TooManyLotsError,
    fold,
)
from tokenplans._values.lots import burn_key
from tokenplans.testing import InMemoryStore, SettableClock

ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))
ALICE = Principal("alice")
JAN_15 = datetime(2026, 1, 15, 12, tzinfo=UTC)
ROLLING = {
    "free": {"price": 0, "tokens": 1000, "rollover": {"max": 500, "periods": 2}},
    "pro": {"price": 900, "tokens": 5000, "duration_days": 30},
}


def _service(
    configs: dict[str, object] | None = None, at: datetime = JAN_15
) -> tuple[TokenService, InMemoryStore, SettableClock]:
    store, clock = InMemoryStore(), SettableClock(at)
    catalog = PlanCatalog.default() if configs is None else PlanCatalog.from_mapping(configs)
    return TokenService(store, catalog, clock), store, clock


def _ledger(store: InMemoryStore, subject: str = "alice") -> list:  # type: ignore[type-arg]
    return list(reversed(store.history(subject, limit=10**6)))


def test_an_account_with_only_its_plan_lot_reads_as_before_lots() -> None:
    service, store, _ = _service()
    service.consume(ALICE, 120)
    hold = service.reserve(ALICE, 30, hold_id="h")
    usage = service.usage(ALICE)

    assert (usage.token_quota, usage.token_used, usage.token_held, usage.remaining) == (
        1000,
        120,
        30,
        850,
    )
    (plan,) = usage.lots
    assert (plan.lot_id, plan.source, plan.amount, plan.used, plan.held, plan.remaining) == (
        "plan",
        LotSource.PLAN,
        1000,
        120,
        30,
        850,
    )
    stored = store.load("alice")
    assert stored is not None
    assert stored.lots == ()  # nothing stored beside the counters
    assert hold.draws == ()  # every credit is the plan lot's: no draws recorded
    assert all(
        entry.facts is None or not getattr(entry.facts, "draws", ()) for entry in _ledger(store)
    )


def test_a_promotional_grant_expiring_mid_hold_forfeits_only_its_free_remainder() -> None:
    service, store, clock = _service()
    service.grant(ADMIN, 500, subject="alice", lot_id="promo", expires="2026-01-20T00:00:00Z")
    clock.set(datetime(2026, 1, 19, 18, tzinfo=UTC))
    hold = service.reserve(ALICE, 300, hold_id="call", ttl_seconds=86_400)
    assert [(d.lot_id, d.amount) for d in hold.draws] == [("promo", 300)]  # expires first

    clock.set(datetime(2026, 1, 20, 6, tzinfo=UTC))  # the promo expired; 300 still held
    usage = service.usage(ALICE)
    promo = next(lot for lot in usage.lots if lot.lot_id == "promo")
    assert (promo.status, promo.amount, promo.held, promo.remaining) == (
        LotStatus.EXPIRED,
        300,
        300,
        0,
    )

    service.settle(ALICE, "call", 120)  # 120 used; the other 180 are forfeited, not freed
    expired = [e for e in _ledger(store) if e.kind is EntryKind.LOT_EXPIRED]
    assert [(e.amount, e.at) for e in expired] == [(200, datetime(2026, 1, 20, tzinfo=UTC))]
    usage = service.usage(ALICE)
    assert [lot.lot_id for lot in usage.lots] == ["plan"]
    assert (usage.token_quota, usage.token_used, usage.remaining) == (1000, 0, 1000)
    assert fold(_ledger(store)) == store.load("alice")


def test_a_rollover_at_the_months_end_lasts_the_periods_the_plan_says() -> None:
    service, store, clock = _service(ROLLING)
    service.consume(ALICE, 300)  # 700 unused in January: 500 of it rolls over
    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    usage = service.usage(ALICE)
    rolled = next(lot for lot in usage.lots if lot.source is LotSource.ROLLOVER)
    assert (rolled.amount, rolled.expires_at) == (500, datetime(2026, 4, 1, tzinfo=UTC))
    assert usage.token_quota == 1500
    service.consume(ALICE, 1200)  # burn order: the plan lot (ends 1 March) first
    usage = service.usage(ALICE)
    rolled = next(lot for lot in usage.lots if lot.source is LotSource.ROLLOVER)
    assert rolled.used == 200
    clock.set(datetime(2026, 4, 1, tzinfo=UTC))
    service.consume(ALICE, 1)  # writes what was due
    kinds = [e.kind for e in _ledger(store)]
    # January's and March's (February's plan lot was used up: nothing to roll).
    assert kinds.count(EntryKind.ROLLED_OVER) == 2
    assert EntryKind.LOT_EXPIRED in kinds
    assert fold(_ledger(store)) == store.load("alice")


def test_an_upgrade_with_a_promotional_lot_in_hand_keeps_it_whole() -> None:
    service, _, clock = _service()
    service.grant(ADMIN, 2000, subject="alice", lot_id="gift", expires="never")
    service.consume(ALICE, 1500)  # the plan lot's 1,000, then 500 of the gift
    hold = service.reserve(ALICE, 100, hold_id="h", ttl_seconds=3600)
    assert [(d.lot_id, d.amount) for d in hold.draws] == [("gift", 100)]
    service.set_plan(ADMIN, "premium", subject="alice")
    usage = service.usage(ALICE)
    gift = next(lot for lot in usage.lots if lot.lot_id == "gift")
    assert (gift.amount, gift.used, gift.held) == (2000, 500, 100)
    assert usage.token_quota == 50_000 + 2000  # nothing left on the basic plan lot
    clock.advance(days=45)  # the term ended; the gift did not
    usage = service.usage(ALICE)
    gift = next(lot for lot in usage.lots if lot.lot_id == "gift")
    assert (usage.plan, gift.amount, gift.used, gift.held) == ("basic", 2000, 500, 0)


def test_an_upgrade_moves_the_plan_lots_holds_to_its_carry_over() -> None:
    service, _, _ = _service()
    service.consume(ALICE, 200)
    service.grant(ADMIN, 50, subject="alice", lot_id="small", expires="never", priority=9)
    service.reserve(ALICE, 300, hold_id="h", ttl_seconds=3600)
    service.set_plan(ADMIN, "standard", subject="alice")
    usage = service.usage(ALICE)
    carry = next(lot for lot in usage.lots if lot.source is LotSource.CARRY_OVER)
    assert (carry.amount, carry.used, carry.held) == (800, 0, 300)
    assert (usage.token_quota, usage.token_used, usage.token_held) == (10_850, 0, 300)
    service.settle(ALICE, "h", 250)
    carry = next(lot for lot in service.usage(ALICE).lots if lot.source is LotSource.CARRY_OVER)
    assert (carry.used, carry.held) == (250, 0)


def test_overage_is_a_debt_a_later_grant_repays_first() -> None:
    service, store, _ = _service()
    service.reserve(ALICE, 1000, hold_id="h")
    settled = service.settle(ALICE, "h", 1300)
    assert settled.overage == 300
    usage = service.grant(ADMIN, 500, subject="alice", lot_id="topup", expires="never")
    topup = next(lot for lot in usage.lots if lot.lot_id == "topup")
    assert (topup.used, usage.remaining) == (300, 200)
    granted = _ledger(store)[-1]
    assert [(d.lot_id, d.amount) for d in granted.facts.draws] == [("topup", 300)]  # type: ignore[union-attr]


def test_grants_refuse_a_past_expiry_a_reused_id_and_the_hundred_and_first_lot() -> None:
    service, _, _ = _service()
    with pytest.raises(InvalidRequestError):
        service.grant(ADMIN, 5, subject="alice", expires="2026-01-15T12:00:00Z")
    with pytest.raises(InvalidRequestError):
        service.grant(ADMIN, 5, subject="alice", lot_id="has:colon")
    service.grant(ADMIN, 5, subject="alice", lot_id="a", priority=3)
    with pytest.raises(LotConflictError):
        service.grant(ADMIN, 5, subject="alice", lot_id="a", priority=4)
    for n in range(98):
        service.grant(ADMIN, 1, subject="alice", expires="never", lot_id=f"n{n}")
    with pytest.raises(TooManyLotsError):
        service.grant(ADMIN, 1, subject="alice", expires="never")
    with pytest.raises(LotNotFoundError):
        service.void_lot(ADMIN, "plan", subject="alice")
    usage = service.void_lot(ADMIN, "a", subject="alice")
    assert all(lot.lot_id != "a" for lot in usage.lots)
    service.grant(ADMIN, 1, subject="alice", expires="never")  # room again


@st.composite
def _steps(draw: st.DrawFn) -> list[tuple[str, int]]:
    kinds = st.sampled_from(
        ["debit", "grant", "grant-soon", "hold", "settle", "up", "down", "wait"]
    )
    return draw(st.lists(st.tuples(kinds, st.integers(1, 3000)), min_size=1, max_size=25))


@given(steps=_steps(), rollover=st.integers(0, 800), periods=st.integers(1, 3))
def test_lazy_reads_equal_step_by_step_and_every_draw_follows_the_burn_order(  # noqa: PLR0912
    steps: list[tuple[str, int]], rollover: int, periods: int
) -> None:
    configs = {
        "free": {
            "price": 0,
            "tokens": 1000,
            **({"rollover": {"max": rollover, "periods": periods}} if rollover else {}),
        },
        "pro": {
            "price": 900,
            "tokens": 4000,
            "duration_days": 30,
            "rollover": {"max": 100, "periods": 1},
        },
    }
    lazy, lazy_store, lazy_clock = _service(configs)
    eager, eager_store, eager_clock = _service(configs)
    holds = 0
    for n, (kind, amount) in enumerate(steps):
        for service, clock in ((lazy, lazy_clock), (eager, eager_clock)):
            if kind == "wait":
                for _day in range(amount // 50 + 1):  # the eager one reads every day
                    clock.advance(days=1)
                    if service is eager:
                        service.usage(ALICE)
                continue
            try:
                if kind == "debit":
                    before = service.account("alice")
                    receipt = service.consume(ALICE, amount % 700 + 1)
                    _check_draws(
                        before,
                        receipt.usage,
                        service,
                        lazy_store if service is lazy else eager_store,
                    )
                elif kind == "grant":
                    service.grant(
                        ADMIN, amount, subject="alice", expires="never", priority=amount % 3
                    )
                elif kind == "grant-soon":
                    at = clock.now() + timedelta(hours=amount)
                    service.grant(ADMIN, amount, subject="alice", expires=at.isoformat())
                elif kind == "hold":
                    service.reserve(ALICE, amount % 500 + 1, hold_id=f"h{n}", ttl_seconds=86_400)
                elif kind == "settle" and holds:
                    service.settle(ALICE, f"h{holds}", amount % 900)
                elif kind == "up":
                    service.set_plan(ADMIN, "pro", subject="alice")
                elif kind == "down":
                    service.set_plan(ADMIN, "free", subject="alice")
            except Exception as error:  # both must refuse alike
                if type(error).__name__ not in {
                    "InsufficientTokensError",
                    "HoldNotFoundError",
                    "HoldConflictError",
                    "AlreadyProcessedError",
                    "TooManyLotsError",
                }:
                    raise
        if kind == "hold":
            holds = n
        assert lazy.usage(ALICE) == eager.usage(ALICE)
    for store in (lazy_store, eager_store):
        account = store.load("alice")
        assert account is None or fold(_ledger(store)) == account
        if account is not None:
            for lot in account.all_lots:
                assert lot.used >= 0
                assert lot.held >= 0
                if lot.source in (LotSource.PROMOTIONAL, LotSource.ROLLOVER):
                    assert lot.used + lot.held <= lot.amount
            _check_spent(_ledger(store))


def _check_draws(before, after, service, store) -> None:  # type: ignore[no-untyped-def]
    """A debit's draws take the lots in burn order: every lot it drew from but the last
    was left with nothing free, and it skipped no lot with credits free."""
    entry = _ledger(store)[-1]
    draws = getattr(entry.facts, "draws", ()) or ()
    if not draws:
        return
    order = [lot for lot in sorted(before.all_lots, key=burn_key) if lot.remaining > 0]
    assert [d.lot_id for d in draws] == [lot.lot_id for lot in order[: len(draws)]]
    for draw, lot in zip(draws[:-1], order, strict=False):
        assert draw.amount == lot.remaining


def _check_spent(entries) -> None:  # type: ignore[no-untyped-def]
    """Nothing spent beyond what was made available plus the recorded overage: every
    debit and settle, less its overage, fits in the credits added (openings, resets,
    grants, rollovers, upgrades) before it."""
    made = spent = 0
    for entry in entries:
        if entry.kind in (EntryKind.DEBITED, EntryKind.HOLD_SETTLED):
            spent += (entry.amount or 0) - (getattr(entry.facts, "overage", None) or 0)
        else:
            made += max(entry.quota_delta, 0) + max(-entry.used_delta, 0)
        assert spent <= made


def test_a_purchased_lot_is_made_once_per_payment_and_a_refund_voids_its_remainder() -> None:
    from tokenplans._rules.lots import purchase_lot, refund_lot  # noqa: PLC0415

    service, _, _ = _service()
    service.consume(ALICE, 100)
    account = service.account("alice")
    bought = purchase_lot(
        account, JAN_15, payment_id="pay_1", credits=5000, expires_at=None, pack_id="p5k"
    )
    assert [e.kind for e in bought.entries] == [EntryKind.LOT_PURCHASED]
    again = purchase_lot(bought.account, JAN_15, payment_id="pay_1", credits=5000, expires_at=None)
    assert again.entries == ()  # the same payment again: nothing more
    lot = next(lot for lot in bought.account.live_lots if lot.lot_id == "pay_1")
    assert (lot.source, lot.amount, lot.created_by) == (LotSource.PURCHASED, 5000, "p5k")
    assert lot == bought.account.live_lots[-1]  # purchased, never expiring: burns last
    refunded = refund_lot(bought.account, JAN_15, payment_id="pay_1")
    assert [e.kind for e in refunded.entries] == [EntryKind.LOT_VOIDED]
    assert refunded.account.token_quota == 1000
    assert refund_lot(refunded.account, JAN_15, payment_id="pay_1").entries == ()
