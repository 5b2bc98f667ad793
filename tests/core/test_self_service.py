"""No user can serve itself more tokens than it was given (docs/quotas.md, "How quotas work").

A user's own actions - consuming, with and without idempotency keys, and asking for any
plan, with and without ``reset_used`` - interleaved with time passing and with what an
admin or a payment may do (assign any plan, grant, renew) must never let it consume more
in a period than the period's plans, grants and payments made available. Stated for any
valid catalog, with extra free plans (trials) and paid plans in any order of tokens.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import (
    TRIAL_ABOVE_PAID,
    WITH_TRIAL,
    admin,
    catalogs,
    clock_jumps,
    colliding_keys,
    instants,
    update_directly,
)

from tokenplans import (
    AlreadyProcessedError,
    EntryKind,
    HoldConflictError,
    HoldNotFoundError,
    IdempotencyConflictError,
    InsufficientTokensError,
    InvalidRequestError,
    LedgerEntry,
    PermissionDeniedError,
    PlanCatalog,
    Principal,
    TokenService,
    TooManyHoldsError,
)
from tokenplans._rules.decisions import Decision
from tokenplans._rules.quota import renew
from tokenplans.testing import InMemoryStore, SettableClock

USER = Principal("alice")


def scenarios(catalog: PlanCatalog) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Runs on ``catalog``, as plain data (a failing run prints as Python): mostly what
    the user does on its own, now and then what others give it."""
    plan_ids = st.sampled_from([plan.id for plan in catalog])
    user = st.one_of(
        # An amount, or "all" (what remains then): a user draining its quota on purpose.
        st.tuples(
            st.just("consume"), st.just("all") | st.integers(1, 60_000), st.none() | colliding_keys
        ),
        # reset_used is refused to a user whatever the plan: asked for now and then.
        st.tuples(st.just("set_plan"), plan_ids, st.sampled_from([False, False, True])),
        st.tuples(st.just("wait"), clock_jumps),
    )
    others = st.one_of(
        st.tuples(st.just("admin_set_plan"), plan_ids),
        st.tuples(st.just("grant"), st.integers(1, 5_000)),
        st.tuples(st.just("renew")),
    )
    return st.lists(st.one_of(user, user, user, others), min_size=3, max_size=30)


#: Any valid catalog, weighted towards one with a trial: the plan a token tap needs.
catalogs_with_trials = st.one_of(
    st.sampled_from(
        [PlanCatalog.from_mapping(WITH_TRIAL), PlanCatalog.from_mapping(TRIAL_ABOVE_PAID)]
    ),
    catalogs,
)
catalogs_and_runs = catalogs_with_trials.flatmap(
    lambda catalog: st.tuples(st.just(catalog), scenarios(catalog))
)

_REFUSALS = (
    InsufficientTokensError,
    IdempotencyConflictError,
    InvalidRequestError,
    PermissionDeniedError,
)


def play(service: TokenService, clock: SettableClock, run: list[tuple[Any, ...]]) -> None:
    for op in run:
        try:
            if op[0] == "consume":
                amount = service.usage(USER).remaining if op[1] == "all" else op[1]
                service.consume(USER, amount, idempotency_key=op[2])
            elif op[0] == "set_plan":
                service.set_plan(USER, op[1], reset_used=op[2])
            elif op[0] == "wait":
                clock.advance(op[1])
            elif op[0] == "admin_set_plan":
                service.set_plan(admin(), op[1], subject=USER.subject)
            elif op[0] == "grant":
                service.grant(admin(), op[1], subject=USER.subject)
            else:

                def paid_renewal(account: Any, now: datetime) -> Any:
                    change = renew(account, service.catalog.get(account.plan_id), now)
                    return Decision(change, None)

                update_directly(service, USER.subject, paid_renewal)
        except _REFUSALS:
            pass


def ledger(service: TokenService) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    cursor = None
    while True:
        page = service.history(USER, cursor=cursor, limit=200)
        entries.extend(page.entries)
        if page.next_cursor is None:
            return entries[::-1]
        cursor = page.next_cursor


# A tap needs a trial, a user asking for it and draining it, in that order: more
# examples than the quick profile's, so it is found on every run of a leaky core.
@settings(max_examples=max(500, settings.default.max_examples))
@given(catalogs_and_runs, instants)
def test_no_user_consumes_more_in_a_period_than_it_was_given(
    catalog_and_run: tuple[PlanCatalog, list[tuple[Any, ...]]], start: datetime
) -> None:
    """Made available in a period: what remained when it began (a reset, an expiry, the
    opening), plus every rise in remaining that someone else caused (an admin, a payment).
    A rise the user caused itself counts for nothing, so a self-service token tap shows."""
    catalog, run = catalog_and_run
    clock = SettableClock(start)
    service = TokenService(InMemoryStore(), catalog, clock)

    play(service, clock, run)

    available = consumed = 0
    before = None
    for entry in ledger(service):
        if before is None or entry.kind in (EntryKind.PERIOD_RESET, EntryKind.TERM_EXPIRED):
            available, consumed = entry.after.remaining, 0
        elif entry.kind is EntryKind.DEBITED:
            consumed += entry.amount or 0
        elif entry.actor != USER.subject:
            available += max(0, entry.after.remaining - before.remaining)
        assert consumed <= available, f"consumed {consumed} of {available} at {entry}"
        before = entry.after


def test_the_trial_loop_of_the_red_team_review_is_closed() -> None:
    """basic -> trial -> consume everything -> basic -> trial ... was 16,000 tokens in one
    period on a 1,000-token plan."""
    catalog = PlanCatalog.from_mapping(
        {
            "basic": {"price": 0, "tokens": 1000},
            "trial": {"price": 0, "tokens": 1000, "duration_days": 14},
        }
    )
    clock = SettableClock(datetime.fromisoformat("2026-01-05T00:00Z"))
    service = TokenService(InMemoryStore(), catalog, clock)
    consumed = 0
    for _ in range(16):
        with contextlib.suppress(PermissionDeniedError):
            service.set_plan(USER, "trial")
        remaining = service.usage(USER).remaining
        if remaining:
            consumed += service.consume(USER, remaining).amount
        service.set_plan(USER, "basic")
        clock.advance(timedelta(minutes=1))

    assert consumed == 1000
    with pytest.raises(PermissionDeniedError) as refused:
        service.set_plan(USER, "trial")
    assert refused.value.reason == "admin_only"
    # An admin may assign the trial; it then ends on its own, back on basic.
    assert service.set_plan(admin(), "trial", subject=USER.subject).usage.plan_end_at


# -- with holds: nothing lapsed comes back -----------------------------------------------

_HOLD_IDS = st.sampled_from(["h1", "h2", "h3"])
#: Seconds to an hour (a hold outlives some and not others), and the long jumps.
_SHORT_OR_LONG = st.one_of(st.builds(timedelta, seconds=st.integers(1, 4000)), clock_jumps)


def held_scenarios(catalog: PlanCatalog) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Runs where the user also holds tokens (reserving an amount or everything that
    remains), settles at, below or above the hold, releases, steps down and lets holds,
    months and terms run out, while payments upgrade and renew and an admin grants."""
    plan_ids = st.sampled_from([plan.id for plan in catalog])
    some = st.just("all") | st.integers(1, 60_000)
    ttls = st.sampled_from([60, 3600, 86_400])
    user = st.one_of(
        st.tuples(st.just("consume"), some, st.none()),
        st.tuples(st.just("reserve"), some, _HOLD_IDS, ttls),
        st.tuples(st.just("reserve"), st.just("all"), _HOLD_IDS, ttls),
        st.tuples(st.just("settle"), _HOLD_IDS, st.sampled_from([0, 0.5, 1, 1.5, 3])),
        st.tuples(st.just("release"), _HOLD_IDS),
        st.tuples(st.just("set_plan"), plan_ids, st.sampled_from([False, False, True])),
        st.tuples(st.just("wait"), _SHORT_OR_LONG),
    )
    others = st.one_of(
        st.tuples(st.just("admin_set_plan"), plan_ids),
        st.tuples(st.just("grant"), st.integers(1, 30_000)),
        st.tuples(st.just("renew")),
    )
    return st.lists(st.one_of(user, user, others), min_size=3, max_size=30)


held_runs = catalogs_with_trials.flatmap(
    lambda catalog: st.tuples(st.just(catalog), held_scenarios(catalog))
)
_HOLD_REFUSALS = (
    *_REFUSALS,
    AlreadyProcessedError,
    HoldConflictError,
    HoldNotFoundError,
    TooManyHoldsError,
)


def play_with_holds(
    service: TokenService, clock: SettableClock, run: list[tuple[Any, ...]]
) -> None:
    for op in run:
        try:
            if op[0] == "reserve":
                amount = service.usage(USER).remaining if op[1] == "all" else op[1]
                service.reserve(USER, amount, hold_id=op[2], ttl_seconds=op[3])
            elif op[0] == "settle":
                hold = service.store.find_hold(USER.subject, op[1])
                held = 1 if hold is None else hold.amount
                service.settle(USER, op[1], int(held * op[2]))
            elif op[0] == "release":
                service.release(USER, op[1])
            else:
                play(service, clock, [op])
        except _HOLD_REFUSALS:
            pass


def _carried(before: Any, after: Any) -> int:
    """What the lots beside the plan lot back across a period boundary: each lot there
    before and after it (a carry-over lot lives until its own expiry, a lot entry of
    its own), counted as the smaller of its backing on either side."""
    backing = {lot.lot_id: max(0, lot.amount - lot.used) for lot in before.lots}
    return sum(
        min(backing[lot.lot_id], max(0, lot.amount - lot.used))
        for lot in after.lots
        if lot.lot_id in backing
    )


def check_nothing_lapsed_comes_back(catalog: PlanCatalog, entries: list[LedgerEntry]) -> None:
    """Usable credits never exceed what was made available and has not lapsed.

    Made available: the opening plan's tokens, each new period's (a month reset, a term
    falling back), each upgrade's target tokens, each renewal's, each grant. Lapsed: what
    a quota still backed (``max(0, token_quota - token_used)``, held tokens included) when
    a new period replaced it, less what credit lots that outlive the boundary still back
    (a carry-over lot lapses at its own instant), and what a downgrade cut from it.
    Usable: the credits used that a quota backed when they were charged, plus what the
    quota backs now.

    A settle may charge beyond what its quota backs: its recorded overage, and the part of
    its hold that a downgrade or a new period stopped backing (an in-flight call is
    honoured). Both are left out of the bound, and each settle's part beyond the backing
    is checked to be no more than those two; the whole of what was charged, less the
    overage, stays within everything made available, lapsed or not.
    """
    rank = {plan.id: index for index, plan in enumerate(catalog)}
    available = lapsed = covered = charged = overage = 0
    before: Any = None
    for entry in entries:
        after = entry.after
        backed_before = 0 if before is None else max(0, before.token_quota - before.token_used)
        backed = max(0, after.token_quota - after.token_used)
        tokens = catalog.get(after.plan_id).tokens
        if before is None:
            available += tokens
        elif entry.kind in (EntryKind.PERIOD_RESET, EntryKind.TERM_EXPIRED):
            available += tokens
            lapsed += max(0, backed_before - _carried(before, after))
        elif entry.kind is EntryKind.PLAN_CHANGED:
            if rank[after.plan_id] > rank[before.plan_id]:
                available += tokens
            else:
                lapsed += max(0, backed_before - backed)
        elif entry.kind is EntryKind.RENEWED:
            available += tokens
        elif entry.kind is EntryKind.GRANTED:
            available += entry.amount or 0
        elif entry.kind in (EntryKind.DEBITED, EntryKind.HOLD_SETTLED):
            amount = entry.used_delta
            backed_part = min(amount, backed_before)
            covered += backed_part
            charged += amount
            overage += getattr(entry.facts, "overage", None) or 0
            if entry.kind is EntryKind.HOLD_SETTLED:
                assert (
                    amount - backed_part
                    <= (getattr(entry.facts, "overage", None) or 0) - entry.held_delta
                ), entry
            else:
                assert amount == backed_part, entry
        assert covered + backed <= available - lapsed, (
            f"usable {covered} used + {backed} backed > {available} made available - "
            f"{lapsed} lapsed, after {entry}"
        )
        assert charged - overage <= available, entry
        before = after


#: The two ways in from the review: premium 51,000 held in full, a step down to basic,
#: then a payment for standard (61,000 instead of 11,000); and a 20,000 grant held on
#: 31 January, the month reset, then a payment for standard.
_JAN_31_23H = datetime(2026, 1, 31, 23, tzinfo=UTC)
_HELD_THROUGH_A_DOWNGRADE = [
    ("admin_set_plan", "premium"),
    ("reserve", "all", "h1", 3600),
    ("set_plan", "basic", False),
    ("admin_set_plan", "standard"),
]
_HELD_THROUGH_A_MONTH_RESET = [
    ("grant", 20_000),
    ("reserve", "all", "h1", 86_400),
    ("wait", timedelta(hours=2)),
    ("admin_set_plan", "standard"),
    ("release", "h1"),
    ("consume", "all", None),
]


@settings(max_examples=max(500, settings.default.max_examples))
@given(held_runs, instants)
@example((PlanCatalog.default(), _HELD_THROUGH_A_DOWNGRADE), datetime(2026, 1, 15, tzinfo=UTC))
@example((PlanCatalog.default(), _HELD_THROUGH_A_MONTH_RESET), _JAN_31_23H)
def test_no_sequence_of_actions_and_payments_yields_more_than_was_made_available(
    catalog_and_run: tuple[PlanCatalog, list[tuple[Any, ...]]], start: datetime
) -> None:
    """Holds outlive downgrades, month resets and term ends (an in-flight call is
    honoured), but what they held must not come back as new tokens (an upgrade carried
    held tokens over on top of what the quota still backed)."""
    catalog, run = catalog_and_run
    clock = SettableClock(start)
    service = TokenService(InMemoryStore(), catalog, clock)

    play_with_holds(service, clock, run)
    # The end of the run: every hold still open is settled for what it holds.
    for hold in service.holds(USER):
        service.settle(USER, hold.hold_id, hold.amount)

    check_nothing_lapsed_comes_back(catalog, ledger(service))
