"""The hold properties, for any catalog, start and run of reserves, settles, releases,
debits, plan changes and clock jumps:

- remaining >= 0 after every entry;
- token_held == the sum of the open holds (stored, and as of now);
- used only exceeds what was made available through a settle above its hold, and then by
  exactly the recorded overage;
- every hold is placed once and closes at most once;
- reserve(n) then settle(n) ends where consume(n) ends;
- lazy expiry == stepping through every expiry and boundary.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st
from strategies import admin, catalogs, clock_jumps, instants, update_directly

from tokenplans import (
    Account,
    AlreadyProcessedError,
    EntryKind,
    Hold,
    HoldConflictError,
    HoldNotFoundError,
    HoldStatus,
    IdempotencyConflictError,
    InsufficientTokensError,
    InvalidRequestError,
    LedgerEntry,
    PlanCatalog,
    TokenService,
    TooManyHoldsError,
    fold,
)
from tokenplans._rules.holds import decide_roll_forward
from tokenplans.testing import InMemoryStore, SettableClock

SUBJECT = "alice"
_IDS = st.sampled_from(["h1", "h2", "h3", "h4"])
_TTLS = st.sampled_from([1, 30, 300, 3600, 86_400])
#: Short jumps too, so holds expire between the operations as often as not.
_JUMPS = st.one_of(st.builds(timedelta, seconds=st.integers(1, 400)), clock_jumps)

#: A settle's amount relative to its hold: below, at, above by some, or far above.
_SETTLES = st.tuples(st.sampled_from(["below", "at", "above", "far above"]), st.integers(0, 500))

_hold_calls = st.one_of(
    st.tuples(st.just("reserve"), st.integers(1, 400), _IDS, _TTLS),
    st.tuples(st.just("settle"), _IDS, _SETTLES),
    st.tuples(st.just("release"), _IDS),
)
hold_operations = st.one_of(
    *[_hold_calls] * 5,
    st.tuples(st.just("settle"), _IDS, st.integers(0, 3000)),
    st.tuples(st.just("consume"), st.integers(1, 1500)),
    st.tuples(st.just("grant"), st.integers(1, 3000)),
    st.tuples(st.just("set_plan"), st.integers(0, 4), st.booleans()),
    st.tuples(st.just("wait"), _JUMPS),
)
hold_runs = st.lists(hold_operations, max_size=40)
_REFUSALS = (
    AlreadyProcessedError,
    InsufficientTokensError,
    HoldConflictError,
    HoldNotFoundError,
    TooManyHoldsError,
    IdempotencyConflictError,
    InvalidRequestError,
)


def open_service(catalog: PlanCatalog, start: datetime) -> tuple[TokenService, SettableClock]:
    clock = SettableClock(start)
    return TokenService(InMemoryStore(), catalog, clock), clock


def apply(service: TokenService, clock: SettableClock, op: tuple[Any, ...]) -> None:
    """One operation as an admin for ``alice``; the refusals the rules make are skipped."""
    who = admin()
    try:
        if op[0] == "reserve":
            service.reserve(who, op[1], hold_id=op[2], ttl_seconds=op[3], subject=SUBJECT)
        elif op[0] == "settle":
            service.settle(who, op[1], settle_amount(service, op[1], op[2]), subject=SUBJECT)
        elif op[0] == "release":
            service.release(who, op[1], subject=SUBJECT)
        elif op[0] == "consume":
            service.consume(who, op[1], subject=SUBJECT)
        elif op[0] == "grant":
            service.grant(who, op[1], subject=SUBJECT)
        elif op[0] == "set_plan":
            plans = list(service.catalog)
            service.set_plan(who, plans[op[1] % len(plans)].id, reset_used=op[2], subject=SUBJECT)
        else:
            clock.advance(seconds=op[1].total_seconds())
    except _REFUSALS:
        pass


def settle_amount(service: TokenService, hold_id: str, how: object) -> int:
    if isinstance(how, int):
        return how
    assert isinstance(how, tuple)
    hold = service.store.find_hold(SUBJECT, hold_id, caller=admin().subject)
    amount = 1 if hold is None else hold.amount
    shift = {"below": -amount // 2, "at": 0, "above": how[1], "far above": 2000 + how[1]}
    return max(0, amount + shift[how[0]])


def entries_of(service: TokenService) -> list[LedgerEntry]:
    return list(reversed(service.store.history(SUBJECT, limit=10**6)))


def check_ledger_with_holds(entries: list[LedgerEntry], stored: Account | None) -> None:
    """Fold == snapshot; remaining >= 0; each settle's overage is exactly what neither its
    hold nor the remaining covered; per period, debits and settles never use more than
    was made available (what remained and was held when it began, every later rise in
    quota and fall in used) plus the recorded overage; each hold placed once, closed once."""
    assert fold(entries) == stored
    previous: Account | None = None
    available = spent = overage = 0
    placed: Counter[str] = Counter()
    freed: Counter[str] = Counter()  # closes that took the hold's tokens out of token_held
    settled: Counter[str] = Counter()
    for entry in entries:
        after = entry.after
        assert after.remaining >= 0
        if entry.kind is EntryKind.HOLD_SETTLED:
            assert getattr(entry.facts, "hold_id", None) is not None
            assert getattr(entry.facts, "overage", None) is not None
            assert previous is not None
            held = -entry.held_delta
            assert getattr(entry.facts, "overage", None) == max(
                0, entry.used_delta - held - previous.remaining
            )
        if previous is None or after.period_start != previous.period_start:
            available, spent, overage = after.remaining + after.token_held, 0, 0
        elif entry.kind in (EntryKind.DEBITED, EntryKind.HOLD_SETTLED):
            spent += entry.used_delta
            overage += getattr(entry.facts, "overage", None) or 0
        else:
            available += max(entry.quota_delta, 0) + max(-entry.used_delta, 0)
        assert spent <= available + overage
        if entry.kind is EntryKind.HOLD_PLACED:
            placed[getattr(entry.facts, "hold_id", None) or ""] += 1
        elif entry.kind in (EntryKind.HOLD_RELEASED, EntryKind.HOLD_EXPIRED) or (
            entry.kind is EntryKind.HOLD_SETTLED and entry.held_delta
        ):
            freed[getattr(entry.facts, "hold_id", None) or ""] += 1
        if entry.kind is EntryKind.HOLD_SETTLED:
            settled[getattr(entry.facts, "hold_id", None) or ""] += 1
        previous = after
    assert all(count == 1 for count in placed.values())
    assert all(count <= 1 for count in freed.values())
    assert all(count <= 1 for count in settled.values())
    assert set(freed) | set(settled) <= set(placed)


@given(catalogs, instants, hold_runs)
def test_every_run_keeps_the_hold_invariants(
    catalog: PlanCatalog, start: datetime, run: list
) -> None:
    service, clock = open_service(catalog, start)
    for op in run:
        apply(service, clock, op)
        usage = service.usage(admin(), subject=SUBJECT)
        assert usage.remaining >= 0
        assert usage.token_held == sum(h.amount for h in service.holds(admin(), subject=SUBJECT))
    stored = service.store.load(SUBJECT)
    if stored is not None:
        assert stored.token_held == sum(h.amount for h in service.store.outstanding(SUBJECT).holds)
    check_ledger_with_holds(entries_of(service), stored)


@given(catalogs, instants, hold_runs, st.integers(1, 2000))
def test_reserve_then_settle_ends_where_consume_ends(
    catalog: PlanCatalog, start: datetime, run: list, amount: int
) -> None:
    held, held_clock = open_service(catalog, start)
    debited, debited_clock = open_service(catalog, start)
    for op in run:
        apply(held, held_clock, op)
        apply(debited, debited_clock, op)
    try:
        debited.consume(admin(), amount, subject=SUBJECT)
    except InsufficientTokensError:
        refused = True
    else:
        refused = False
    if refused:
        try:
            held.reserve(admin(), amount, subject=SUBJECT)
        except InsufficientTokensError:
            return
        raise AssertionError("a reserve succeeded where the same consume was refused")
    hold = held.reserve(admin(), amount, subject=SUBJECT)
    held.settle(admin(), hold.hold_id, amount, subject=SUBJECT)
    assert attrs.evolve(held.account(SUBJECT), version=0) == attrs.evolve(
        debited.account(SUBJECT), version=0
    )


def _moments_between(service: TokenService, now: datetime, until: datetime) -> list[datetime]:
    """Every instant in ``(now, until]`` at which the account changes by itself: its open
    holds' expiries and its period and term boundaries."""
    account = service.store.load(SUBJECT)
    if account is None:
        return []
    moments = {h.expires_at for h in service.store.outstanding(SUBJECT).holds if now < h.expires_at}
    moment = account.plan_end_at or account.period_end
    while moment <= until:
        moments.add(moment)
        moment = (moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)) + timedelta(
            days=32
        )
        moment = moment.replace(day=1)
    return sorted(m for m in moments if now < m <= until)


def _system_id(lot_id: str) -> str:
    """A lot id tokenplans made (``carry_over:12``) names the version of the entry that
    made it, and stepping writes more entries than a lazy read: the same lot, another
    number. Callers' ids (no ``:``) are kept."""
    return lot_id.split(":", maxsplit=1)[0] + ":#" if ":" in lot_id else lot_id


def _as_compared(value: Any) -> Any:
    """An account or a hold as the two paths must agree on it: versions aside, and the
    generated part of a made lot's id aside (wherever a lot or a draw names it)."""
    if isinstance(value, Account):
        value = attrs.evolve(
            value,
            version=0,
            lots=tuple(attrs.evolve(lot, lot_id=_system_id(lot.lot_id)) for lot in value.lots),
        )
    if isinstance(value, Hold) and value.draws:
        value = attrs.evolve(
            value,
            draws=tuple(attrs.evolve(draw, lot_id=_system_id(draw.lot_id)) for draw in value.draws),
        )
    return value


@given(catalogs, instants, hold_runs)
def test_lazy_expiry_equals_stepping_through_every_expiry_and_boundary(
    catalog: PlanCatalog, start: datetime, run: list
) -> None:
    lazy, lazy_clock = open_service(catalog, start)
    stepped, stepped_clock = open_service(catalog, start)
    for op in run:
        if op[0] == "wait":
            now = stepped_clock.now()
            target = now + op[1]
            for moment in _moments_between(stepped, now, target):
                stepped_clock.set(moment)
                update_directly(stepped, SUBJECT, lambda a, t: decide_roll_forward(a, t, None))
            stepped_clock.set(target)
        else:
            apply(stepped, stepped_clock, op)
        apply(lazy, lazy_clock, op)
        assert _as_compared(lazy.account(SUBJECT)) == _as_compared(stepped.account(SUBJECT))
        assert [_as_compared(h) for h in lazy.holds(admin(), subject=SUBJECT)] == [
            _as_compared(h) for h in stepped.holds(admin(), subject=SUBJECT)
        ]
    for hold_id in ("h1", "h2", "h3", "h4"):
        found = lazy.store.find_hold(SUBJECT, hold_id, caller=admin().subject)
        if found is not None:
            assert _as_compared(lazy.hold(admin(), hold_id, subject=SUBJECT)) == _as_compared(
                stepped.hold(admin(), hold_id, subject=SUBJECT)
            )
    assert {
        getattr(e.facts, "hold_id", None)
        for e in entries_of(lazy)
        if e.kind is EntryKind.HOLD_EXPIRED
    } <= {
        getattr(e.facts, "hold_id", None)
        for e in entries_of(stepped)
        if e.kind is EntryKind.HOLD_EXPIRED
    }


def test_a_hold_expired_by_the_roll_forward_is_expired_everywhere() -> None:
    service, clock = open_service(
        PlanCatalog.default(), datetime.fromisoformat("2026-01-15T00:00Z")
    )
    service.reserve(admin(), 10, hold_id="h1", ttl_seconds=1, subject=SUBJECT)
    clock.advance(seconds=5)
    update_directly(service, SUBJECT, lambda a, t: decide_roll_forward(a, t, None))
    found = service.store.find_hold(SUBJECT, "h1", caller=admin().subject)
    assert found is not None
    assert found.status is HoldStatus.EXPIRED


@given(catalogs, instants, hold_runs, st.integers(1, 500), st.integers(0, 5000))
def test_a_settle_uses_exactly_its_amount_and_only_the_uncovered_part_is_overage(
    catalog: PlanCatalog, start: datetime, run: list, held: int, used: int
) -> None:
    service, clock = open_service(catalog, start)
    for op in run:
        apply(service, clock, op)
    account = service.account(SUBJECT)  # room for the hold, whatever the run left
    short = account.token_used + account.token_held - account.token_quota
    service.grant(admin(), held + max(0, short), subject=SUBJECT)
    hold = service.reserve(admin(), held, subject=SUBJECT)
    before = service.account(SUBJECT)

    settled = service.settle(admin(), hold.hold_id, used, subject=SUBJECT)

    after = service.account(SUBJECT)
    assert settled.overage == max(0, used - held - before.remaining)
    assert after.token_used - before.token_used == used
    assert after.token_held == before.token_held - held
    # Beyond what the hold and the remaining covered, used grows by exactly the overage.
    beyond = after.token_used + after.token_held - after.token_quota
    assert (
        max(0, beyond)
        <= max(0, before.token_used + before.token_held - before.token_quota) + settled.overage
    )
    assert after.remaining >= 0
