"""The quota properties, stated for any catalog, start and operation run."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    add_months,
    admin,
    amounts,
    catalogs,
    idempotency_keys,
    instants,
    invalid_amounts,
    operation_runs,
    run_operations,
)

from tokenplans import (
    Account,
    EntryKind,
    InvalidRequestError,
    LedgerEntry,
    PlanCatalog,
    TokenService,
    fold,
)
from tokenplans._rules.expiry import roll_forward_with_expiry
from tokenplans._rules.quota import change_plan, next_month_start
from tokenplans.testing import InMemoryStore, SettableClock


def open_service(catalog: PlanCatalog, start: datetime) -> tuple[TokenService, SettableClock]:
    clock = SettableClock(start)
    return TokenService(InMemoryStore(), catalog, clock), clock


def ledger(service: TokenService, subject: str) -> list[LedgerEntry]:
    """Every entry oldest first, read through the public pages (small, to page a lot)."""
    newest_first: list[LedgerEntry] = []
    cursor = None
    while True:
        page = service.history(admin(), subject=subject, cursor=cursor, limit=7)
        newest_first.extend(page.entries)
        if page.next_cursor is None:
            return list(reversed(newest_first))
        cursor = page.next_cursor


@given(catalogs, instants, operation_runs)
def test_remaining_is_never_negative_and_the_ledger_folds_to_the_snapshot(
    catalog: PlanCatalog, start: datetime, run: list
) -> None:
    service, clock = open_service(catalog, start)

    run_operations(service, clock, "alice", run)

    entries = ledger(service, "alice")
    assert all(entry.after.remaining >= 0 for entry in entries)
    assert service.usage(admin(), subject="alice").remaining >= 0
    assert fold(entries) == service.store.load("alice")
    assert [entry.version for entry in entries] == list(range(1, len(entries) + 1))


@given(catalogs, instants, operation_runs)
def test_debits_in_a_period_never_exceed_the_tokens_made_available_in_it(
    catalog: PlanCatalog, start: datetime, run: list
) -> None:
    """Made available: what remained when the period began, plus every later rise in
    quota (grant, renewal) and every fall in used (an admin's reset_used)."""
    service, clock = open_service(catalog, start)
    total = run_operations(service, clock, "alice", run)

    entries = ledger(service, "alice")
    assert total == sum(e.amount or 0 for e in entries if e.kind is EntryKind.DEBITED)
    previous: Account | None = None
    available = debited = 0
    for entry in entries:
        if previous is None or entry.after.period_start != previous.period_start:
            available, debited = entry.after.remaining, 0
        elif entry.kind is EntryKind.DEBITED:
            debited += entry.used_delta
        else:
            available += max(entry.quota_delta, 0) + max(-entry.used_delta, 0)
        assert debited <= available
        previous = entry.after


@given(catalogs, instants, operation_runs, st.data())
def test_an_upgrade_never_lowers_remaining(
    catalog: PlanCatalog, start: datetime, run: list, data: st.DataObject
) -> None:
    service, clock = open_service(catalog, start)
    run_operations(service, clock, "alice", run)
    account = service.account("alice")
    current = catalog.get(account.plan_id)
    higher = [plan for plan in catalog if plan.rank > current.rank]
    if not higher:
        return
    target = data.draw(st.sampled_from(higher))

    upgraded = change_plan(account, target, catalog, clock.now()).account

    assert upgraded.remaining >= account.remaining
    assert upgraded.remaining == target.tokens + account.remaining


@given(catalogs, instants, operation_runs, amounts, idempotency_keys)
def test_a_repeated_idempotent_debit_changes_nothing(
    catalog: PlanCatalog, start: datetime, run: list, amount: int, key: str
) -> None:
    key = f"fresh:{key}"[:255]  # not one of the run's colliding keys
    service, clock = open_service(catalog, start)
    run_operations(service, clock, "alice", run)
    # Enough for the first attempt to succeed, even when a downgrade left used > quota.
    before = service.account("alice")
    if before.token_used > before.token_quota:
        service.grant(admin(), before.token_used - before.token_quota, subject="alice")
    service.grant(admin(), amount, subject="alice")
    first = service.consume(admin(), amount, idempotency_key=key, subject="alice")
    stored = service.store.load("alice")
    history = ledger(service, "alice")

    again = service.consume(admin(), first.amount, idempotency_key=key, subject="alice")

    assert again == attrs.evolve(first, replayed=True)
    assert service.store.load("alice") == stored
    assert ledger(service, "alice") == history


def boundaries(account: Account, until: datetime) -> list[datetime]:
    """The instants at which the account would next change by itself, up to ``until``."""
    moments = []
    while True:
        moment = account.plan_end_at if account.plan_end_at is not None else account.period_end
        if moment > until:
            return moments
        moments.append(moment)
        # What the account would look like right after: a term ends into its calendar
        # month, a month into the next.
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        account = attrs.evolve(
            account, plan_end_at=None, period_start=start, period_end=next_month_start(start)
        )


@given(catalogs, instants, operation_runs, instants | st.integers(0, 200), st.data())
def test_lazy_roll_forward_equals_stepping_through_every_boundary(
    catalog: PlanCatalog, start: datetime, run: list, until: object, data: st.DataObject
) -> None:
    service, clock = open_service(catalog, start)
    run_operations(service, clock, "alice", run)
    account = service.account("alice")
    now = clock.now()
    later = add_months(now, until) if isinstance(until, int) else max(until, now)
    later += data.draw(st.sampled_from([timedelta(0), timedelta(seconds=1), timedelta(days=3)]))

    # The whole roll-forward (resets, term ends and the credit lots' own expiries, each
    # at its instant): the period rules alone jump idle months in one entry and leave a
    # lot's expiry between them to this loop.
    lazy = roll_forward_with_expiry(account, catalog, later).change.account
    stepped = account
    for moment in [*boundaries(account, later), later]:
        stepped = roll_forward_with_expiry(stepped, catalog, moment).change.account

    assert attrs.evolve(lazy, version=0) == attrs.evolve(stepped, version=0)
    # The service's read takes the same lazy path from the stored snapshot.
    clock.set(later)
    assert attrs.evolve(service.account("alice"), version=0) == attrs.evolve(lazy, version=0)


@given(invalid_amounts)
def test_amounts_outside_the_range_are_refused_and_write_nothing(amount: object) -> None:
    service, _ = open_service(PlanCatalog.default(), datetime.fromisoformat("2026-01-15T00:00Z"))

    with pytest.raises(InvalidRequestError):
        service.consume(admin(), amount, subject="alice")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        service.grant(admin(), amount, subject="alice")  # type: ignore[arg-type]

    assert service.store.load("alice") is None
