"""The quota properties over real storage: a Hypothesis state machine drives the same use cases
against the store under test and the in-memory model and asserts they always agree.

Subjects, idempotency keys and payment ids come from small pools (with case and
trailing-space variants), so operations collide: replays, key conflicts, same-subject
upgrades after debits, payments moving through their statuses. After every step both
stores must hold the same snapshots and ledgers, every ledger folds to its snapshot,
and nothing is ever overdrawn.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from storage_support import ADMIN, MID_JANUARY, service_over, whole_ledger

from tokenplans import (
    AccountStore,
    Payment,
    PaymentStatus,
    PlanCatalog,
    Principal,
    TokenplansError,
    fold,
)
from tokenplans._rules.quota import grant as grant_rule
from tokenplans.ports import Commit
from tokenplans.testing import InMemoryStore, SettableClock

CATALOG = PlanCatalog.default()
SUFFIXES = ["ann", "Ann", "ann ", "\N{LATIN SMALL LETTER U WITH DIAERESIS}ber"]
KEYS = st.none() | st.sampled_from(["k-1", "K-1", "k-1 ", "retry"])
JUMPS = st.one_of(
    st.builds(timedelta, seconds=st.integers(1, 600)),
    st.builds(timedelta, days=st.integers(1, 40)),
    st.builds(timedelta, days=st.integers(300, 800)),
)


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except TokenplansError as error:
        return (type(error).__name__, None)  # messages may differ, the error may not


def _machine_for(real: AccountStore) -> type[RuleBasedStateMachine]:
    class StoreAgreesWithTheModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.run = uuid.uuid4().hex[:12]
            self.clock = SettableClock(MID_JANUARY)
            self.model = InMemoryStore()
            self.real = real
            self.services = [
                service_over(store, self.clock, CATALOG) for store in (self.model, self.real)
            ]

        def subject(self, suffix: str) -> str:
            return f"sm-{self.run}-{suffix}"

        def both(self, call: Callable[[Any], Any]) -> Any:
            model, real = (_outcome(lambda s=s: call(s)) for s in self.services)
            assert real == model
            return real

        @rule(suffix=st.sampled_from(SUFFIXES), amount=st.integers(1, 1500), key=KEYS)
        def consume(self, suffix: str, amount: int, key: str | None) -> None:
            subject = self.subject(suffix)
            self.both(lambda s: s.consume(Principal(subject), amount, idempotency_key=key))

        @rule(
            suffix=st.sampled_from(SUFFIXES),
            plan=st.sampled_from([p.id for p in CATALOG]),
            reset_used=st.booleans(),
            as_admin=st.booleans(),
        )
        def set_plan(self, suffix: str, plan: str, reset_used: bool, as_admin: bool) -> None:
            subject = self.subject(suffix)
            principal = ADMIN if as_admin else Principal(subject)
            self.both(lambda s: s.set_plan(principal, plan, reset_used=reset_used, subject=subject))

        @rule(suffix=st.sampled_from(SUFFIXES), amount=st.integers(1, 5000))
        def grant(self, suffix: str, amount: int) -> None:
            subject = self.subject(suffix)
            self.both(lambda s: s.grant(ADMIN, amount, subject=subject))

        @rule(jump=JUMPS)
        def time_passes(self, jump: timedelta) -> None:
            self.clock.advance(seconds=jump.total_seconds())

        @rule(suffix=st.sampled_from(SUFFIXES))
        def a_stale_commit_conflicts(self, suffix: str) -> None:
            subject = self.subject(suffix)
            loaded = self.model.load(subject)
            if loaded is None or loaded.version < 2:
                return
            stale = attrs.evolve(loaded, version=loaded.version - 1)
            change = grant_rule(stale, 7, self.clock.now())
            commit = Commit(change.account, stale.version, change.entries)
            assert _outcome(lambda: self.real.commit(commit)) == _outcome(
                lambda: self.model.commit(commit)
            )

        @rule(
            suffix=st.sampled_from(SUFFIXES),
            n=st.integers(0, 2),
            plan=st.sampled_from(["standard", "premium"]),
        )
        def add_payment(self, suffix: str, n: int, plan: str) -> None:
            subject = self.subject(suffix)
            now = self.clock.now()
            payment = Payment(
                id=f"pay-{self.run}-{suffix}-{n}",
                subject=subject,
                plan_id=plan,
                amount=CATALOG.get(plan).price,
                currency="INR",
                order_id=f"order-{self.run}-{n}-{suffix}",
                status=PaymentStatus.CREATED,
                created_at=now,
                updated_at=now,
            )
            self.both(lambda s: s.store.add_payment(payment))

        @rule(
            suffix=st.sampled_from(SUFFIXES),
            n=st.integers(0, 2),
            status=st.sampled_from(list(PaymentStatus)),
            expected=st.sampled_from(list(PaymentStatus)),
            event=st.none() | st.sampled_from(["e1", "e2"]),
        )
        def update_payment(
            self,
            suffix: str,
            n: int,
            status: PaymentStatus,
            expected: PaymentStatus,
            event: str | None,
        ) -> None:
            stored = self.model.find_payment(f"order-{self.run}-{n}-{suffix}")
            if stored is None:
                return
            changed = attrs.evolve(stored, status=status, updated_at=self.clock.now())
            event_id = None if event is None else f"{self.run}-{event}"
            self.both(
                lambda s: s.store.update_payment(
                    changed, expected_status=expected, event_id=event_id
                )
            )

        @invariant()
        def both_stores_hold_the_same_accounts_ledgers_and_payments(self) -> None:
            for suffix in SUFFIXES:
                subject = self.subject(suffix)
                account = self.real.load(subject)
                assert account == self.model.load(subject)
                entries = whole_ledger(self.real, subject)
                assert entries == whole_ledger(self.model, subject)
                assert fold(entries) == account
                assert account is None or account.remaining >= 0
                assert list(self.real.payments_of(subject)) == list(self.model.payments_of(subject))
            for event in ("e1", "e2"):
                event_id = f"{self.run}-{event}"
                assert self.real.event_seen(event_id) == self.model.event_seen(event_id)

    return StoreAgreesWithTheModel


def test_every_store_agrees_with_the_in_memory_model_under_random_operations(
    store: AccountStore,
) -> None:
    profile = settings()
    run_state_machine_as_test(
        _machine_for(store),
        settings=settings(
            profile,
            max_examples=min(profile.max_examples // 2, 40),
            stateful_step_count=25,
        ),
    )
