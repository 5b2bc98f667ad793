"""No user can serve itself more tokens than it was given (docs/quotas.md, "How quotas work").

A user's own actions - consuming, with and without idempotency keys, and asking for any
plan, with and without ``reset_used`` - interleaved with time passing and with what an
admin or a payment may do (assign any plan, grant, renew) must never let it consume more
in a period than the period's plans, grants and payments made available. Stated for any
valid catalog, with extra free plans (trials) and paid plans in any order of tokens.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
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
    EntryKind,
    IdempotencyConflictError,
    InsufficientTokensError,
    InvalidRequestError,
    LedgerEntry,
    PermissionDeniedError,
    PlanCatalog,
    Principal,
    TokenService,
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
