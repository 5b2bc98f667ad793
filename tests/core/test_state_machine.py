"""Random sequences of every operation and clock jump, against a deliberately simple model.

The model below re-states "How quotas work" (docs/quotas.md) and the holds (docs/holds.md) from
scratch (it imports nothing from ``tokenplans._rules``) and rolls time forward one boundary
or hold expiry at a time, while the service rolls forward lazily; after every step the
service, its store and its ledger must agree with the model and with the invariants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from strategies import (
    add_months,
    amounts,
    catalog_mappings,
    clock_jumps,
    colliding_keys,
    instants,
    update_directly,
)

from tokenplans import (
    REFERENCE_PLAN_CONFIGS,
    Account,
    AlreadyProcessedError,
    DebitReceipt,
    EntryKind,
    Hold,
    HoldConflictError,
    HoldNotFoundError,
    HoldStatus,
    IdempotencyConflictError,
    InsufficientTokensError,
    InvalidRequestError,
    LedgerEntry,
    LotConflictError,
    LotNotFoundError,
    PermissionDeniedError,
    PlanCatalog,
    Principal,
    TokenService,
    fold,
)
from tokenplans._rules.decisions import Decision
from tokenplans._rules.quota import renew
from tokenplans.testing import InMemoryStore, SettableClock

SUBJECTS = ("alice", "bob")
HOLD_IDS = ("h1", "h2", "h3")
ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))
MAX = 10**12

# --------------------------------------------------------------------------- the model


def first_of_month(t: datetime) -> datetime:
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def first_of_next_month(t: datetime) -> datetime:
    if t.month == 12:
        return datetime(t.year + 1, 1, 1, tzinfo=UTC)
    return datetime(t.year, t.month + 1, 1, tzinfo=UTC)


@attrs.define
class ModelHold:
    amount: int
    expires: datetime
    status: str = "open"
    settled: int | None = None
    overage: int = 0
    late: bool = False
    #: (lot name, amount) in the order the credits were taken.
    draws: list[tuple[str, int]] = attrs.field(factory=list)


#: The burn order among lots otherwise equal (docs/credit-lots.md).
SOURCE_RANK = {"plan": 0, "carry_over": 1, "promotional": 3}


@attrs.define
class ModelLot:
    """A batch of credits. The plan lot's ``expires`` is the account's period or term end
    (read from the account); carry-over and promotional lots keep their own."""

    name: str
    source: str
    amount: int
    used: int = 0
    held: int = 0
    priority: int = 0
    expires: datetime | None = None
    effective: datetime | None = None
    status: str = "active"

    @property
    def free(self) -> int:
        return max(0, self.amount - self.used - self.held)

    @property
    def counts(self) -> bool:
        return self.source == "plan" or self.status == "active" or self.held > 0


@attrs.define
class ModelAccount:
    plan: str
    start: datetime
    end: datetime
    term_end: datetime | None
    #: The plan lot first, then the others in the order they were made.
    lots: list[ModelLot]
    #: By (caller, hold id): ids are scoped to the caller who placed the hold.
    holds: dict[tuple[str, str], ModelHold] = attrs.field(factory=dict)
    made: int = 0

    def hold_for(self, principal: Principal, subject: str, hold_id: str) -> ModelHold | None:
        """The hold an id names for ``principal``: its own; an admin acting for the
        subject falls back to the subject's own."""
        callers = [principal.subject]
        if principal.is_admin and principal.subject != subject:
            callers.append(subject)
        for caller in callers:
            if (caller, hold_id) in self.holds:
                return self.holds[(caller, hold_id)]
        return None

    @property
    def plan_lot(self) -> ModelLot:
        return self.lots[0]

    def lot(self, name: str) -> ModelLot:
        return next((lot for lot in self.lots if lot.name == name), self.plan_lot)

    def expiry_of(self, lot: ModelLot) -> datetime | None:
        if lot.source == "plan":
            return self.term_end or self.end
        return lot.expires

    def in_burn_order(self) -> list[ModelLot]:
        def key(lot: ModelLot) -> tuple[Any, ...]:
            expires = self.expiry_of(lot)
            effective = lot.effective or self.start
            return (
                lot.priority,
                expires is None,
                expires or self.start,
                SOURCE_RANK[lot.source],
                effective,
                lot.name,
            )

        return sorted(self.lots, key=key)

    def take(self, amount: int, into: str) -> list[tuple[str, int]]:
        """Up to ``amount`` free credits in burn order, into ``used`` or ``held``."""
        draws = []
        for lot in self.in_burn_order():
            if amount == 0:
                break
            part = min(amount, lot.free) if lot.status == "active" else 0
            if part:
                setattr(lot, into, getattr(lot, into) + part)
                draws.append((lot.name, part))
                amount -= part
        return draws

    def give_back(self, hold: ModelHold, used: int) -> int:
        """The hold's credits back to its lots (held into used up to ``used``); what is
        freed on a lot that expired or was voided is forfeited. Returns ``used`` left."""
        for name, part in hold.draws:
            lot = self.lot(name)
            taken = min(part, used)
            used -= taken
            lot.held -= part
            lot.used += taken
            if lot.status != "active":
                lot.amount -= part - taken
        return used

    def tidy(self) -> None:
        self.lots = [lot for lot in self.lots if lot.counts]

    @property
    def quota(self) -> int:
        return sum(lot.amount for lot in self.lots)

    @property
    def used(self) -> int:
        return sum(lot.used for lot in self.lots)

    @property
    def held(self) -> int:
        return sum(h.amount for h in self.holds.values() if h.status == "open")

    @property
    def remaining(self) -> int:
        return max(0, self.quota - self.used - self.held)

    def side(self) -> list[ModelLot]:
        """The plan side: the plan lot and the carry-over lots."""
        return [lot for lot in self.lots if lot.source in ("plan", "carry_over")]

    def new_period(self, at: datetime, tokens: int) -> None:
        """A reset or a term's end at ``at``: a fresh allowance; carry-over lots due by
        then lapse with it, their held credits staying held on the plan lot."""
        plan = self.plan_lot
        plan.amount, plan.used = tokens, 0
        for lot in list(self.lots):
            if lot.source == "carry_over" and lot.expires is not None and lot.expires <= at:
                plan.held += lot.held
                self.lots.remove(lot)
                for hold in self.holds.values():
                    hold.draws = [("plan" if n == lot.name else n, a) for n, a in hold.draws]


class Model:
    """Plans as the raw mapping the catalog was loaded from; rank is position."""

    def __init__(self, configs: dict[str, dict[str, Any]]) -> None:
        self.plans = list(configs.values())
        self.default = next(
            p for p in self.plans if p["price"] == 0 and p.get("duration_days") is None
        )
        self.accounts: dict[str, ModelAccount] = {}
        # Keyed by (subject, caller, key): a user's keys and its admin's are apart.
        self.receipts: dict[tuple[str, str, str], DebitReceipt] = {}
        # A grant's lot id: what it was granted with, and its answer.
        self.lot_grants: dict[tuple[str, str], tuple[Any, Any]] = {}

    def plan(self, plan_id: str) -> dict[str, Any]:
        return next(p for p in self.plans if p["id"] == plan_id)

    def rank(self, plan_id: str) -> int:
        return [p["id"] for p in self.plans].index(plan_id)

    def at(self, subject: str, now: datetime) -> ModelAccount:
        """The account as of ``now``, stepping through every boundary, hold expiry and lot
        expiry one at a time, in time order (a boundary first at one instant, then holds,
        then lots)."""
        if subject not in self.accounts:
            self.accounts[subject] = ModelAccount(
                self.default["id"],
                first_of_month(now),
                first_of_next_month(now),
                None,
                [ModelLot("plan", "plan", self.default["tokens"])],
            )
        a = self.accounts[subject]
        while True:
            boundary = a.term_end or a.end
            events: list[tuple[datetime, int, str, Any]] = []
            if boundary <= now:
                events.append((boundary, 0, "", None))
            for key, h in a.holds.items():
                if h.status == "open" and h.expires <= now:
                    events.append((h.expires, 1, "\x00".join(key), h))
            events += [
                (lot.expires, 2, lot.name, lot)
                for lot in a.lots
                if lot.source != "plan"
                and lot.status == "active"
                and lot.expires is not None
                and lot.expires <= now
            ]
            if not events:
                return a
            _at, kind, _name, thing = min(events, key=lambda e: e[:3])
            if kind == 1:
                thing.status = "expired"
                a.give_back(thing, 0)
            elif kind == 2:
                thing.amount -= thing.free
                thing.status = "expired"
            elif a.term_end is not None:
                ended = a.term_end
                a.plan = self.default["id"]
                a.new_period(ended, self.default["tokens"])
                a.start, a.end, a.term_end = first_of_month(ended), first_of_next_month(ended), None
            else:
                ended = a.end
                a.new_period(ended, self.plan(a.plan)["tokens"])
                a.start, a.end = a.end, first_of_next_month(a.end)
            a.tidy()


# --------------------------------------------------------------------------- ledger checks


def check_ledger(entries: list[LedgerEntry], stored: Account | None) -> None:
    """Fold == snapshot, contiguous versions, and per period: debits and settles, less
    their recorded overage, <= tokens made available (the remaining and held at the
    period's start, plus every later rise in quota and every fall in used other than a
    debit's)."""
    assert fold(entries) == stored
    assert [e.version for e in entries] == list(range(1, len(entries) + 1))
    if not entries:
        return
    assert entries[0].kind is EntryKind.OPENED
    previous: Account | None = None
    available = debited = 0
    for entry in entries:
        after = entry.after
        assert after.remaining >= 0
        if entry.kind in (EntryKind.DEBITED, EntryKind.HOLD_SETTLED):
            assert (entry.used_delta, entry.quota_delta) == (entry.amount, 0)
        if previous is None or after.period_start != previous.period_start:
            # Held tokens were made available when reserved, and stay so across periods.
            available, debited = after.remaining + after.token_held, 0
        elif entry.kind in (EntryKind.DEBITED, EntryKind.HOLD_SETTLED):
            debited += entry.used_delta - (getattr(entry.facts, "overage", None) or 0)
        else:
            available += max(entry.quota_delta, 0) + max(-entry.used_delta, 0)
        assert debited <= available
        previous = after


def next_leap_day(now: datetime) -> datetime:
    year = now.year
    while True:
        if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
            candidate = datetime(year, 2, 29, now.hour, now.minute, now.second, tzinfo=UTC)
            if candidate > now:
                return candidate
        year += 1


# --------------------------------------------------------------------------- the machine


class QuotaMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ready = False

    @initialize(
        configs=st.one_of(
            st.just({k: dict(v) for k, v in REFERENCE_PLAN_CONFIGS.items()}),
            catalog_mappings(max_extra=3),
        ),
        start=instants,
    )
    def open_service(self, configs: dict[str, dict[str, Any]], start: datetime) -> None:
        self.model = Model(configs)
        self.clock = SettableClock(start)
        self.store = InMemoryStore()
        self.service = TokenService(self.store, PlanCatalog.from_mapping(configs), self.clock)
        self.ready = True

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def unchanged(self, subject: str, before: Account | None) -> None:
        assert self.store.load(subject) == before

    # -- time ------------------------------------------------------------------------

    @rule(jump=clock_jumps)
    def time_passes(self, jump: timedelta) -> None:
        self.clock.advance(seconds=jump.total_seconds())

    @rule(
        where=st.sampled_from(
            ["month start", "month end", "dec 31", "leap day", "12 months", "1 month"]
        )
    )
    def clock_lands_on_a_boundary(self, where: str) -> None:
        now = self.now
        if where == "month start":
            target = first_of_next_month(now)
        elif where == "month end":
            target = first_of_next_month(now) - timedelta(seconds=1)
            if target <= now:
                target = first_of_next_month(target + timedelta(seconds=1)) - timedelta(seconds=1)
        elif where == "dec 31":
            target = datetime(now.year, 12, 31, 23, 59, 59, tzinfo=UTC)
            if target <= now:
                target = target.replace(year=now.year + 1)
        elif where == "leap day":
            target = next_leap_day(now)
        elif where == "12 months":
            target = add_months(now, 12)
        else:
            target = add_months(now, 1)
        self.clock.set(target)

    @rule(subject=st.sampled_from(SUBJECTS))
    def clock_lands_on_a_term_end(self, subject: str) -> None:
        term_end = self.model.at(subject, self.now).term_end
        if term_end is not None:
            self.clock.set(term_end)

    # -- debits ----------------------------------------------------------------------

    @rule(
        subject=st.sampled_from(SUBJECTS),
        amount=amounts,
        how=st.sampled_from(["as drawn", "exactly remaining", "one over remaining"]),
        key=st.none() | colliding_keys,
        by_admin=st.booleans(),
    )
    def consume(self, subject: str, amount: int, how: str, key: str | None, by_admin: bool) -> None:
        account = self.model.at(subject, self.now)
        if how == "exactly remaining" and account.remaining > 0:
            amount = account.remaining
        elif how == "one over remaining":
            amount = account.remaining + 1
        principal = ADMIN if by_admin else Principal(subject)
        before = self.store.load(subject)
        first = None if key is None else self.model.receipts.get((subject, principal.subject, key))

        if amount > MAX:
            with pytest.raises(InvalidRequestError):
                self.service.consume(principal, amount, idempotency_key=key, subject=subject)
            self.unchanged(subject, before)
        elif first is not None and first.amount != amount:
            with pytest.raises(IdempotencyConflictError):
                self.service.consume(principal, amount, idempotency_key=key, subject=subject)
            self.unchanged(subject, before)
        elif first is not None:
            again = self.service.consume(principal, amount, idempotency_key=key, subject=subject)
            assert again == attrs.evolve(first, replayed=True)
            self.unchanged(subject, before)
        elif amount > account.remaining:
            with pytest.raises(InsufficientTokensError) as refused:
                self.service.consume(principal, amount, idempotency_key=key, subject=subject)
            assert refused.value.remaining == account.remaining
            self.unchanged(subject, before)
        else:
            receipt = self.service.consume(principal, amount, idempotency_key=key, subject=subject)
            account.take(amount, "used")
            assert not receipt.replayed
            assert (receipt.usage.token_used, receipt.usage.remaining) == (
                account.used,
                account.remaining,
            )
            if key is not None:
                self.model.receipts[(subject, principal.subject, key)] = receipt

    @rule(subject=st.sampled_from(SUBJECTS))
    def someone_else_touches_the_account(self, subject: str) -> None:
        mallory = Principal("mallory")
        before = self.store.load(subject)
        for call in (
            lambda: self.service.usage(mallory, subject=subject),
            lambda: self.service.consume(mallory, 1, subject=subject),
            lambda: self.service.set_plan(mallory, self.model.default["id"], subject=subject),
            lambda: self.service.grant(mallory, 1, subject=subject),
            lambda: self.service.reserve(mallory, 1, subject=subject),
            lambda: self.service.settle(mallory, "h1", 1, subject=subject),
            lambda: self.service.release(mallory, "h1", subject=subject),
            lambda: self.service.holds(mallory, subject=subject),
        ):
            with pytest.raises(PermissionDeniedError):
                call()
        self.unchanged(subject, before)

    # -- holds -----------------------------------------------------------------------

    @rule(
        subject=st.sampled_from(SUBJECTS),
        amount=st.integers(1, 2000),
        how=st.sampled_from(["as drawn", "exactly remaining", "one over remaining"]),
        hold_id=st.sampled_from(HOLD_IDS),
        ttl=st.sampled_from([1, 60, 300, 3600, 86_400]),
        by_admin=st.booleans(),
    )
    def reserve(
        self, *, subject: str, amount: int, how: str, hold_id: str, ttl: int, by_admin: bool
    ) -> None:
        account = self.model.at(subject, self.now)
        if how == "exactly remaining" and account.remaining > 0:
            amount = account.remaining
        elif how == "one over remaining":
            amount = account.remaining + 1
        principal = ADMIN if by_admin else Principal(subject)
        before = self.store.load(subject)
        existing = account.holds.get((principal.subject, hold_id))

        def call() -> Hold:
            return self.service.reserve(
                principal, amount, hold_id=hold_id, ttl_seconds=ttl, subject=subject
            )

        if amount > MAX:
            with pytest.raises(InvalidRequestError):
                call()
            self.unchanged(subject, before)
        elif existing is not None and existing.amount != amount:
            with pytest.raises(HoldConflictError):
                call()
            self.unchanged(subject, before)
        elif existing is not None and existing.status != "open":
            with pytest.raises(AlreadyProcessedError) as done:
                call()
            assert done.value.hold is not None
            assert done.value.hold.status.value == existing.status
            self.unchanged(subject, before)
        elif existing is not None:
            again = call()
            assert (again.replayed, again.status.value) == (True, existing.status)
            self.unchanged(subject, before)
        elif amount > account.remaining:
            with pytest.raises(InsufficientTokensError) as refused:
                call()
            assert refused.value.remaining == account.remaining
            self.unchanged(subject, before)
        else:
            hold = call()
            assert (hold.status, hold.amount, hold.replayed) == (HoldStatus.OPEN, amount, False)
            assert hold.expires_at == self.now + timedelta(seconds=ttl)
            draws = account.take(amount, "held")
            account.holds[(principal.subject, hold_id)] = ModelHold(
                amount, hold.expires_at, draws=draws
            )

    @rule(
        subject=st.sampled_from(SUBJECTS),
        hold_id=st.sampled_from(HOLD_IDS),
        how=st.sampled_from(["zero", "below", "at", "above", "far above"]),
        extra=st.integers(1, 3000),
        by_admin=st.booleans(),
    )
    def settle(self, subject: str, hold_id: str, how: str, extra: int, by_admin: bool) -> None:
        account = self.model.at(subject, self.now)
        principal = ADMIN if by_admin else Principal(subject)
        hold = account.hold_for(principal, subject, hold_id)
        base = 1 if hold is None else hold.amount
        amount = {
            "zero": 0,
            "below": base // 2,
            "at": base,
            "above": base + extra // 10,
            "far above": base + extra,
        }[how]
        before = self.store.load(subject)

        def call() -> Hold:
            return self.service.settle(principal, hold_id, amount, subject=subject)

        if amount > MAX:
            with pytest.raises(InvalidRequestError):
                call()
            self.unchanged(subject, before)
        elif hold is None:
            with pytest.raises(HoldNotFoundError):
                call()
            self.unchanged(subject, before)
        elif hold.status == "released" or (hold.status == "settled" and hold.settled != amount):
            with pytest.raises(HoldConflictError) as conflict:
                call()
            assert conflict.value.hold.status.value == hold.status
            self.unchanged(subject, before)
        elif hold.status == "settled":
            again = call()
            assert (again.replayed, again.settled, again.overage) == (True, amount, hold.overage)
            self.unchanged(subject, before)
        else:
            late = hold.status == "expired"
            held = 0 if late else hold.amount
            overage = max(0, amount - held - account.remaining)
            settled = call()
            excess = amount if late else account.give_back(hold, amount)
            hold.status, hold.settled, hold.overage, hold.late = "settled", amount, overage, late
            account.take(excess - overage, "used")
            account.plan_lot.used += overage
            account.tidy()
            assert (settled.status, settled.settled, settled.overage, settled.late) == (
                HoldStatus.SETTLED,
                amount,
                overage,
                late,
            )

    @rule(
        subject=st.sampled_from(SUBJECTS),
        hold_id=st.sampled_from(HOLD_IDS),
        by_admin=st.booleans(),
    )
    def release(self, subject: str, hold_id: str, by_admin: bool) -> None:
        account = self.model.at(subject, self.now)
        principal = ADMIN if by_admin else Principal(subject)
        hold = account.hold_for(principal, subject, hold_id)
        before = self.store.load(subject)

        def call() -> Hold:
            return self.service.release(principal, hold_id, subject=subject)

        if hold is None:
            with pytest.raises(HoldNotFoundError):
                call()
            self.unchanged(subject, before)
        elif hold.status == "settled":
            with pytest.raises(HoldConflictError):
                call()
            self.unchanged(subject, before)
        elif hold.status in ("released", "expired"):
            again = call()
            assert (again.replayed, again.status.value) == (True, hold.status)
            self.unchanged(subject, before)
        else:
            assert call().status is HoldStatus.RELEASED
            hold.status = "released"
            account.give_back(hold, 0)
            account.tidy()

    @rule(subject=st.sampled_from(SUBJECTS), hold_id=st.sampled_from(HOLD_IDS), later=st.booleans())
    def clock_lands_on_a_hold_expiry(self, subject: str, hold_id: str, later: bool) -> None:
        hold = self.model.at(subject, self.now).hold_for(ADMIN, subject, hold_id)
        if hold is not None and hold.status == "open":
            self.clock.set(hold.expires + (timedelta(seconds=1) if later else timedelta(0)))

    # -- plan changes ----------------------------------------------------------------

    @rule(
        subject=st.sampled_from(SUBJECTS),
        index=st.integers(0, 3),
        reset_used=st.booleans(),
        by_admin=st.booleans(),
    )
    def set_plan(  # noqa: PLR0912, PLR0915 - the model's plan change, rule by rule
        self, subject: str, index: int, reset_used: bool, by_admin: bool
    ) -> None:
        target = self.model.plans[index % len(self.model.plans)]
        now = self.now
        account = self.model.at(subject, now)
        current_rank, target_rank = self.model.rank(account.plan), self.model.rank(target["id"])
        principal = ADMIN if by_admin else Principal(subject)
        before = self.store.load(subject)

        refusal = None
        if not by_admin and reset_used:
            refusal = "admin_only"
        elif not by_admin and target_rank > current_rank:
            # Any self-service upgrade, to a paid plan or a free trial.
            refusal = "payment_required" if target["price"] > 0 else "admin_only"
        if refusal is not None:
            with pytest.raises(PermissionDeniedError) as denied:
                self.service.set_plan(
                    principal, target["id"], reset_used=reset_used, subject=subject
                )
            assert denied.value.reason == refusal
            self.unchanged(subject, before)
            return

        remaining_before = account.remaining
        result = self.service.set_plan(
            principal, target["id"], reset_used=reset_used, subject=subject
        )
        days = target.get("duration_days")
        side = account.side()
        if target_rank > current_rank:
            expected = f"upgraded to {target['id']} with carry-over"
            carried = max(0, sum(lot.amount - lot.used for lot in side))
            carried_held = sum(lot.held for lot in side)
            others = [lot for lot in account.lots if lot not in side]
            account.lots = [ModelLot("plan", "plan", target["tokens"])]
            ends = first_of_next_month(now) if days is None else now + timedelta(days=days)
            if carried or carried_held:
                account.made += 1
                name = f"carry-{account.made}"
                account.lots.append(
                    ModelLot(name, "carry_over", carried, 0, carried_held, 0, ends, now)
                )
                names = {lot.name for lot in side}
                for h in account.holds.values():
                    if h.status == "open":
                        merged: dict[str, int] = {}
                        for n, part in h.draws:
                            moved = name if n in names else n
                            merged[moved] = merged.get(moved, 0) + part
                        h.draws = list(merged.items())
            account.lots += others
            if days is None:
                account.start, account.end = first_of_month(now), first_of_next_month(now)
                account.term_end = None
            else:
                account.start = now
                account.end = account.term_end = now + timedelta(days=days)
            assert result.usage.remaining >= remaining_before  # an upgrade never lowers it
        elif target_rank == current_rank:
            expected = "plan confirmed"
            for lot in side:
                lot.used = 0 if reset_used else lot.used
        else:
            expected = f"downgraded to {target['id']}"
            for lot in side:
                lot.used = 0 if reset_used else lot.used
            cut = max(0, sum(lot.amount for lot in side) - target["tokens"])
            for lot in side[1:]:
                part = min(cut, lot.amount)
                cut, lot.amount = cut - part, lot.amount - part
                if not (lot.amount or lot.used or lot.held):
                    account.lots.remove(lot)
            account.plan_lot.amount -= min(cut, account.plan_lot.amount)
            if days is None:
                account.start, account.end = first_of_month(now), first_of_next_month(now)
                account.term_end = None
        account.plan = target["id"]
        assert result.message == expected

    @rule(subject=st.sampled_from(SUBJECTS), amount=amounts, by_admin=st.booleans())
    def grant(self, subject: str, amount: int, by_admin: bool) -> None:
        before = self.store.load(subject)
        if not by_admin:
            with pytest.raises(PermissionDeniedError):
                self.service.grant(Principal(subject), amount, subject=subject)
            self.unchanged(subject, before)
            return
        usage = self.service.grant(ADMIN, amount, subject=subject)
        account = self.model.at(subject, self.now)
        account.plan_lot.amount += amount
        assert usage.token_quota == account.quota

    @rule(
        subject=st.sampled_from(SUBJECTS),
        amount=st.integers(1, 3000),
        expires=st.sampled_from(["period", "never", "hours", "past"]),
        hours=st.integers(1, 24 * 70),
        priority=st.sampled_from([0, 1, 1000]),
        lot_id=st.sampled_from(["p1", "p2", None]),
    )
    def grant_lot(
        self,
        *,
        subject: str,
        amount: int,
        expires: str,
        hours: int,
        priority: int,
        lot_id: str | None,
    ) -> None:
        now = self.now
        account = self.model.at(subject, now)
        before = self.store.load(subject)
        when = {
            "period": ("period", account.end),
            "never": ("never", None),
            "hours": ((now + timedelta(hours=hours)).isoformat(), now + timedelta(hours=hours)),
            "past": (now.isoformat(), now),
        }
        given, expires_at = when[expires]

        def call() -> Any:
            return self.service.grant(
                ADMIN, amount, subject=subject, expires=given, priority=priority, lot_id=lot_id
            )

        if expires == "past":
            with pytest.raises(InvalidRequestError):
                call()
            self.unchanged(subject, before)
            return
        request = (amount, expires_at if expires == "hours" else expires, priority)
        first = None if lot_id is None else self.model.lot_grants.get((subject, lot_id))
        if first is not None and first[0] != request:
            with pytest.raises(LotConflictError):
                call()
            self.unchanged(subject, before)
            return
        if first is not None:
            assert call() == first[1]
            self.unchanged(subject, before)
            return
        usage = call()
        stored = self.store.load(subject)
        assert stored is not None
        lot = ModelLot(
            # A lot without an id is named by the version of its entry (the last one).
            lot_id or f"promotional:{stored.version}",
            "promotional",
            amount,
            priority=priority,
            expires=expires_at,
            effective=now,
        )
        plan = account.plan_lot
        debt = min(plan.used, max(0, plan.used + plan.held - plan.amount), amount)
        plan.used -= debt
        lot.used += debt
        account.lots.append(lot)
        if lot_id is not None:
            self.model.lot_grants[(subject, lot_id)] = (request, usage)
        assert (usage.token_quota, usage.token_used) == (account.quota, account.used)

    @rule(subject=st.sampled_from(SUBJECTS), lot_id=st.sampled_from(["p1", "p2"]))
    def void_lot(self, subject: str, lot_id: str) -> None:
        account = self.model.at(subject, self.now)
        before = self.store.load(subject)
        found = next((lot for lot in account.lots[1:] if lot.name == lot_id), None)
        if found is None:
            with pytest.raises(LotNotFoundError):
                self.service.void_lot(ADMIN, lot_id, subject=subject)
            self.unchanged(subject, before)
            return
        self.service.void_lot(ADMIN, lot_id, subject=subject)
        if found.status != "active":
            self.unchanged(subject, before)
            return
        found.amount -= found.free
        found.status = "voided"
        account.tidy()

    @rule(subject=st.sampled_from(SUBJECTS), later=st.booleans())
    def clock_lands_on_a_lot_expiry(self, subject: str, later: bool) -> None:
        account = self.model.at(subject, self.now)
        ends = [lot.expires for lot in account.lots[1:] if lot.expires is not None]
        if ends:
            self.clock.set(min(ends) + (timedelta(seconds=1) if later else timedelta(0)))

    @rule(subject=st.sampled_from(SUBJECTS), payment=st.integers(1, 10**6))
    def paid_renewal(self, subject: str, payment: int) -> None:
        now = self.now
        account = self.model.at(subject, now)
        plan = self.model.plan(account.plan)
        before = self.store.load(subject)

        def decide(current: Account, at: datetime) -> Decision[Account]:
            change = renew(
                current, self.service.catalog.get(current.plan_id), at, payment_id=f"pay_{payment}"
            )
            return Decision(change, change.account)

        days = plan.get("duration_days")
        if days is None:
            with pytest.raises(InvalidRequestError):
                update_directly(self.service, subject, decide)
            self.unchanged(subject, before)
            return
        update_directly(self.service, subject, decide)
        if account.term_end is not None and account.term_end > now:
            old = account.term_end
            account.term_end = account.end = account.term_end + timedelta(days=days)
            for lot in account.lots:
                if lot.source == "carry_over" and lot.expires == old:
                    lot.expires = account.term_end
        else:
            account.start = now
            account.term_end = account.end = now + timedelta(days=days)
        account.plan_lot.amount += plan["tokens"]

    # -- invariants ------------------------------------------------------------------

    @invariant()
    @precondition(lambda self: self.ready)
    def service_agrees_with_the_model_and_the_ledger_explains_the_snapshot(self) -> None:
        for subject in SUBJECTS:
            usage = self.service.usage(Principal(subject))
            model = self.model.at(subject, self.now)
            assert (
                usage.plan,
                usage.token_quota,
                usage.token_used,
                usage.token_held,
                usage.remaining,
                usage.period_start,
                usage.period_end,
                usage.plan_end_at,
            ) == (
                model.plan,
                model.quota,
                model.used,
                model.held,
                model.remaining,
                model.start,
                model.end,
                model.term_end,
            )
            assert usage.remaining >= 0
            # Every live lot, in burn order, as the model has it.
            assert [
                (lot.source.value, lot.amount, lot.used, lot.held, lot.priority, lot.status.value)
                for lot in usage.lots
            ] == [
                (lot.source, lot.amount, lot.used, lot.held, lot.priority, lot.status)
                for lot in model.in_burn_order()
            ]
            assert [
                (lot.lot_id, lot.expires_at)
                for lot in usage.lots
                if lot.source.value == "promotional"
            ] == [
                (lot.name, lot.expires)
                for lot in model.in_burn_order()
                if lot.source == "promotional"
            ]
            for lot in usage.lots:
                assert lot.used >= 0
                assert lot.held >= 0
                if lot.source.value == "promotional":
                    assert lot.used + lot.held <= lot.amount
            open_now = self.service.holds(ADMIN, subject=subject)
            assert {h.key: h.amount for h in open_now} == {
                key: h.amount for key, h in model.holds.items() if h.status == "open"
            }
            own = self.service.holds(Principal(subject))
            assert {h.hold_id for h in own} == {
                hold_id
                for (caller, hold_id), h in model.holds.items()
                if h.status == "open" and caller == subject
            }
            for (caller, hold_id), expected in model.holds.items():
                seen = self.service.hold(ADMIN, hold_id, subject=subject, caller=caller)
                assert (seen.status.value, seen.settled, seen.late) == (
                    expected.status,
                    expected.settled,
                    expected.late,
                )
            stored = self.store.load(subject)
            if stored is not None:
                stored_open = self.store.outstanding(subject).holds
                assert stored.token_held == sum(h.amount for h in stored_open)
            entries = list(reversed(self.store.history(subject, limit=10**9)))
            check_ledger(entries, stored)


# Examples come from the active profile (dev 50, ci 500); 50 steps reach decades of
# clock jumps and every rule several times; the ci run takes about 15 s on 2 cores.
QuotaMachine.TestCase.settings = settings(stateful_step_count=50)
test_quota_machine = QuotaMachine.TestCase
