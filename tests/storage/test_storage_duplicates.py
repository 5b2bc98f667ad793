"""Trying to get a model call without paying for it, or to pay twice, through duplicates:
on every store, requests racing with one hold id or one idempotency key, another caller
using the same id, and a duplicate arriving at the hold's expiry instant."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from storage_support import ADMIN, new_subject, service_over, whole_ledger

from tokenplans import (
    AccountStore,
    AlreadyProcessedError,
    EntryKind,
    HoldConflictError,
    Principal,
    RequestInProgressError,
    TokenService,
    fold,
)
from tokenplans.testing import InMemoryStore, SettableClock

RACERS = 12


def _race(call: Callable[[int], object]) -> list[object]:
    """``call(n)`` from RACERS threads released together; each result or error raised."""
    start = threading.Barrier(RACERS)

    def one(n: int) -> object:
        start.wait()
        try:
            return call(n)
        except (RequestInProgressError, AlreadyProcessedError) as refused:
            return refused

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(one, range(RACERS)))


def test_racing_requests_with_one_hold_id_call_the_model_once_and_pay_once(
    store: AccountStore,
) -> None:
    service = service_over(store)
    user = Principal(new_subject())
    hold_id = f"call-{new_subject()}"
    calls: list[int] = []

    def request(n: int) -> str:
        with service.holding(user, 100, hold_id=hold_id) as held:
            calls.append(n)  # the model call
            held.settle(60)
        return "served"

    outcomes = _race(request)

    assert len(calls) == 1
    assert outcomes.count("served") == 1
    assert all(
        isinstance(o, RequestInProgressError | AlreadyProcessedError)
        for o in outcomes
        if o != "served"
    )
    usage = service.usage(user)
    assert (usage.token_used, usage.token_held) == (60, 0)
    entries = whole_ledger(store, user.subject)
    assert sum(entry.kind is EntryKind.HOLD_SETTLED for entry in entries) == 1
    assert fold(entries) == store.load(user.subject)


def test_racing_debits_with_one_key_charge_once(store: AccountStore) -> None:
    service = service_over(store)
    user = Principal(new_subject())
    key = f"chat-{new_subject()}"

    receipts = _race(lambda _: service.consume(user, 70, idempotency_key=key))

    assert service.usage(user).token_used == 70
    assert sum(not r.replayed for r in receipts) == 1  # type: ignore[attr-defined]
    assert fold(whole_ledger(store, user.subject)) == store.load(user.subject)


@pytest.mark.parametrize("amount", [100, 101, 10**12])
def test_a_finished_holds_id_never_places_a_new_hold_nor_charges(
    store: AccountStore, amount: int
) -> None:
    """A client's hold id is not read before the first decision (the store refuses a new
    hold under a stored key instead): replaying a settled hold's id, with the account
    drained so that no new hold would fit, is answered by that hold and writes nothing."""
    service = service_over(store)
    user = Principal(new_subject())
    hold_id = f"call-{new_subject()}"
    service.reserve(user, 100, hold_id=hold_id)
    settled = service.settle(user, hold_id, 100)
    service.consume(user, service.usage(user).remaining)  # nothing left
    before = store.load(user.subject), whole_ledger(store, user.subject)

    expected = AlreadyProcessedError if amount == 100 else HoldConflictError
    with pytest.raises(expected) as refused:
        service.reserve(user, amount, hold_id=hold_id)

    assert refused.value.hold == settled  # type: ignore[attr-defined]
    assert (store.load(user.subject), whole_ledger(store, user.subject)) == before
    assert store.outstanding(user.subject).holds == ()


def test_a_user_racing_its_back_end_for_one_id_gets_its_own_hold_and_pays_its_own(
    store: AccountStore,
) -> None:
    """Ids are per caller: the user's hold neither blocks nor settles the back end's."""
    service = service_over(store)
    subject = new_subject()
    user, hold_id = Principal(subject), f"job-{new_subject()}"

    def request(n: int) -> object:
        caller = ADMIN if n % 2 else user
        service.reserve(caller, 100, hold_id=hold_id, subject=subject)
        return service.settle(caller, hold_id, 10, subject=subject)

    settled = [o for o in _race(request) if not isinstance(o, Exception)]

    assert {hold.caller for hold in settled} == {subject, ADMIN.subject}
    assert service.usage(user).token_used == 20  # one settle of 10 per caller, no more
    assert service.usage(user).token_held == 0


def test_a_duplicate_at_the_expiry_instant_is_not_served_and_the_first_still_pays() -> None:
    clock = SettableClock(datetime(2026, 1, 15, 12, tzinfo=UTC))
    store = InMemoryStore()
    service = TokenService(store, service_over(store).catalog, clock)
    user = Principal("alice")
    calls: list[str] = []

    with service.holding(user, 300, hold_id="call-b0d1", ttl_seconds=60) as first:
        calls.append("first")
        clock.set(first.hold.expires_at)  # the duplicate comes exactly at the expiry
        with (
            pytest.raises(AlreadyProcessedError),
            service.holding(user, 300, hold_id="call-b0d1", ttl_seconds=60),
        ):
            calls.append("duplicate")
        late = first.settle(250)  # the first call did happen: charged, late

    assert calls == ["first"]
    assert (late.late, late.settled) == (True, 250)
    assert (service.usage(user).token_used, service.usage(user).token_held) == (250, 0)
