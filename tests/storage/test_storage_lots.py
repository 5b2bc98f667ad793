"""Credit lots on every store: lots and hold draws round-trip, a lot id grants once, and
concurrent grants and debits on one account lose no lot and draw no credit twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from storage_support import ADMIN, new_subject, service_over, whole_ledger

from tokenplans import (
    AccountStore,
    EntryKind,
    InsufficientTokensError,
    LotConflictError,
    LotSource,
    LotStatus,
    PlanCatalog,
    Principal,
    fold,
)
from tokenplans.errors import AccountBusyError
from tokenplans.testing import SettableClock

JAN_15 = datetime(2026, 1, 15, 12, tzinfo=UTC)


def test_lots_and_hold_draws_round_trip_and_the_ledger_folds_to_them(store: AccountStore) -> None:
    clock = SettableClock(JAN_15)
    service = service_over(store, clock)
    alice = new_subject("lots")
    user = Principal(alice)
    service.grant(ADMIN, 300, subject=alice, lot_id="promo-1", expires="2026-01-20T00:00:00Z")
    service.grant(ADMIN, 200, subject=alice, lot_id="gift", expires="never", priority=5)

    clock.set(datetime(2026, 1, 19, 12, tzinfo=UTC))
    hold = service.reserve(user, 1100, hold_id="h", ttl_seconds=86400)
    # Burn order: the promo (expires first), then the plan lot; the gift (priority 5) last.
    assert [(d.lot_id, d.amount) for d in hold.draws] == [("promo-1", 300), ("plan", 800)]
    clock.set(datetime(2026, 1, 20, 1, tzinfo=UTC))  # the promo expired while held
    usage = service.usage(user)
    promo = next(lot for lot in usage.lots if lot.lot_id == "promo-1")
    assert (promo.status, promo.amount, promo.held) == (LotStatus.EXPIRED, 300, 300)

    service.settle(user, "h", 1000)  # 300 from the promo, 700 from the plan lot
    usage = service.usage(user)
    assert [lot.lot_id for lot in usage.lots] == ["plan", "gift"]
    assert (usage.token_quota, usage.token_used, usage.token_held) == (1200, 700, 0)

    stored = store.load(alice)
    assert stored is not None
    assert stored.lots == tuple(lot for lot in usage.lots if lot.source is not LotSource.PLAN)
    entries = whole_ledger(store, alice)
    assert fold(entries) == stored
    kinds = [entry.kind for entry in entries]
    assert kinds.count(EntryKind.LOT_GRANTED) == 2
    assert EntryKind.LOT_EXPIRED in kinds


def test_a_lot_id_grants_once_and_another_grant_under_it_is_refused(store: AccountStore) -> None:
    service = service_over(store)
    alice = new_subject("lots")
    first = service.grant(ADMIN, 500, subject=alice, lot_id="welcome", expires="never")
    again = service.grant(ADMIN, 500, subject=alice, lot_id="welcome", expires="never")
    assert again == first
    with pytest.raises(LotConflictError):
        service.grant(ADMIN, 600, subject=alice, lot_id="welcome", expires="never")
    service.void_lot(ADMIN, "welcome", subject=alice)
    # Voided with nothing used or held, it left; its id still replays the first grant.
    assert service.grant(ADMIN, 500, subject=alice, lot_id="welcome", expires="never") == first
    assert service.usage(ADMIN, subject=alice).token_quota == 1000


def test_concurrent_grants_and_debits_lose_no_lot_and_draw_nothing_twice(
    store: AccountStore,
) -> None:
    service = service_over(store, catalog=PlanCatalog.default())
    alice = new_subject("lots-race")
    user = Principal(alice)
    lot_ids = [f"lot-{n}" for n in range(8)]

    def grant(lot_id: str) -> None:
        for _ in range(3):  # the same lot id again, racing itself: granted once
            service.grant(ADMIN, 100, subject=alice, lot_id=lot_id, expires="never")

    def debit(worker: int) -> int:
        spent = 0
        for n in range(15):
            try:
                service.consume(user, 7, idempotency_key=f"d-{worker}-{n}")
                spent += 7
            except (InsufficientTokensError, AccountBusyError):
                pass
        return spent

    with ThreadPoolExecutor(8) as pool:
        grants = [pool.submit(grant, lot_id) for lot_id in lot_ids]
        debits = [pool.submit(debit, worker) for worker in range(4)]
        for future in grants:
            future.result()
        spent = sum(future.result() for future in debits)

    usage = service.usage(user)
    assert sorted(lot.lot_id for lot in usage.lots if lot.lot_id != "plan") == lot_ids
    assert usage.token_quota == 1000 + 100 * len(lot_ids)
    assert usage.token_used == spent
    assert sum(lot.used for lot in usage.lots) == spent
    assert all(0 <= lot.used + lot.held <= lot.amount for lot in usage.lots)
    entries = whole_ledger(store, alice)
    assert fold(entries) == store.load(alice)
    drawn = sum(
        draw.amount
        for entry in entries
        if entry.kind is EntryKind.DEBITED
        for draw in (getattr(entry.facts, "draws", ()) or ())
    )
    plan_only = sum(
        entry.amount or 0
        for entry in entries
        if entry.kind is EntryKind.DEBITED and not getattr(entry.facts, "draws", ())
    )
    assert drawn + plan_only == spent
    assert [e.kind for e in entries].count(EntryKind.LOT_GRANTED) == len(lot_ids)


def test_a_rollover_and_an_upgrade_keep_a_promotional_lot_whole(store: AccountStore) -> None:
    catalog = PlanCatalog.from_mapping(
        {
            "free": {"price": 0, "tokens": 1000, "rollover": {"max": 400, "periods": 2}},
            "pro": {"price": 900, "tokens": 5000, "duration_days": 30},
        }
    )
    clock = SettableClock(JAN_15)
    service = service_over(store, clock, catalog)
    alice = new_subject("lots")
    service.grant(ADMIN, 250, subject=alice, lot_id="promo", expires="never")
    service.consume(Principal(alice), 100)
    clock.set(datetime(2026, 2, 3, tzinfo=UTC))
    usage = service.usage(ADMIN, subject=alice)
    rolled = next(lot for lot in usage.lots if lot.source is LotSource.ROLLOVER)
    assert (rolled.amount, rolled.expires_at) == (400, datetime(2026, 4, 1, tzinfo=UTC))
    service.set_plan(ADMIN, "pro", subject=alice)
    clock.advance(timedelta(days=40))
    usage = service.usage(ADMIN, subject=alice)
    promo = next(lot for lot in usage.lots if lot.lot_id == "promo")
    assert (promo.amount, promo.used, promo.status) == (250, 0, LotStatus.ACTIVE)
    assert fold(whole_ledger(store, alice)) == store.load(alice)
