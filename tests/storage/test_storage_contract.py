"""The storage contract: every AccountStore (in-memory, SQLite, MariaDB, PostgreSQL) behaves
the same, through the use cases and through the port itself.

The in-memory store is the model; each test here runs once per store via the
parametrised ``store`` fixture, so a database that rounds a timestamp, folds the case
of a subject or half-writes a conflicting commit fails the same test the model passes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from storage_support import ADMIN, MID_JANUARY, new_subject, service_over, whole_ledger
from strategies import update_directly

from tokenplans import (
    MAX_AMOUNT,
    Account,
    AccountStore,
    DebitReceipt,
    EntryKind,
    IdempotencyConflictError,
    InsufficientTokensError,
    LedgerEntry,
    Payment,
    PaymentStatus,
    PlanCatalog,
    Principal,
    Usage,
    fold,
)
from tokenplans._rules.decisions import Decision
from tokenplans._rules.quota import debit, grant, open_account, renew
from tokenplans.ports import Commit, HandledEvent, WriteConflictError
from tokenplans.testing import SettableClock

CATALOG = PlanCatalog.default()


def _assert_ledger_folds_to_snapshot(store: AccountStore, subject: str) -> list[LedgerEntry]:
    entries = whole_ledger(store, subject)
    assert [e.version for e in entries] == list(range(1, len(entries) + 1))
    assert fold(entries) == store.load(subject)
    return entries


# -- use cases through TokenService ------------------------------------------------------


def test_an_unknown_subject_reads_as_a_fresh_basic_account_and_nothing_is_written(
    store: AccountStore,
) -> None:
    subject = new_subject()
    usage = service_over(store).usage(Principal(subject))
    assert (usage.plan, usage.token_quota, usage.token_used) == ("basic", 1000, 0)
    assert store.load(subject) is None
    assert store.history(subject) == []


def test_a_first_debit_opens_the_account_and_the_ledger_folds_to_it(store: AccountStore) -> None:
    subject = new_subject()
    receipt = service_over(store).consume(Principal(subject), 300)
    stored = store.load(subject)
    assert stored is not None
    assert (stored.plan_id, stored.token_quota, stored.token_used, stored.version) == (
        "basic",
        1000,
        300,
        2,
    )
    assert receipt.usage.remaining == 700
    entries = _assert_ledger_folds_to_snapshot(store, subject)
    assert [e.kind for e in entries] == [EntryKind.OPENED, EntryKind.DEBITED]


def test_times_round_trip_exactly_as_aware_utc_with_microseconds(store: AccountStore) -> None:
    subject = new_subject()
    service_over(store).consume(Principal(subject), 1)
    stored = store.load(subject)
    assert stored is not None
    assert stored.period_start == datetime(2026, 1, 1, tzinfo=UTC)
    assert stored.period_start.tzinfo is UTC
    newest = store.history(subject, limit=1)[0]
    assert newest.at == MID_JANUARY
    assert newest.at.tzinfo is UTC


def test_a_debit_larger_than_remaining_is_refused_and_writes_nothing(store: AccountStore) -> None:
    subject = new_subject()
    tokens = service_over(store)
    tokens.consume(Principal(subject), 900)
    with pytest.raises(InsufficientTokensError) as refused:
        tokens.consume(Principal(subject), 101, idempotency_key="too-much")
    assert refused.value.remaining == 100
    stored = store.load(subject)
    assert stored is not None
    assert (stored.token_used, stored.version) == (900, 2)
    assert store.find_receipt(subject, subject, "too-much") is None


def test_an_idempotent_debit_replayed_returns_the_first_receipt_and_debits_once(
    store: AccountStore,
) -> None:
    subject = new_subject()
    tokens = service_over(store)
    first = tokens.consume(Principal(subject), 40, idempotency_key="chat-turn-7")
    again = tokens.consume(Principal(subject), 40, idempotency_key="chat-turn-7")
    assert again == attrs.evolve(first, replayed=True)
    assert store.find_receipt(subject, subject, "chat-turn-7") == first
    stored = store.load(subject)
    assert stored is not None
    assert stored.token_used == 40
    with pytest.raises(IdempotencyConflictError):
        tokens.consume(Principal(subject), 41, idempotency_key="chat-turn-7")


def test_a_grant_retried_with_its_key_applies_once(store: AccountStore) -> None:
    """A grant whose answer was lost (a 503 says retry) is sent again with its key: the
    retry answers the first grant's usage and grants nothing, even after the account
    moved on; the same key for another amount or another request is a conflict."""
    subject = new_subject()
    tokens = service_over(store)
    first = tokens.grant(ADMIN, 500, subject=subject, idempotency_key="grant-1")
    tokens.consume(Principal(subject), 30)
    again = tokens.grant(ADMIN, 500, subject=subject, idempotency_key="grant-1")

    assert again == first
    assert first.token_quota == 1500
    assert tokens.usage(ADMIN, subject=subject).token_quota == 1500
    receipt = store.find_receipt(subject, ADMIN.subject, "grant-1")
    assert receipt is not None
    assert (receipt.request, receipt.amount, receipt.usage) == ("grant", 500, first)
    with pytest.raises(IdempotencyConflictError):
        tokens.grant(ADMIN, 501, subject=subject, idempotency_key="grant-1")
    with pytest.raises(IdempotencyConflictError):  # a grant's key is no debit's
        tokens.consume(ADMIN, 500, subject=subject, idempotency_key="grant-1")
    # Without a key, each grant is a grant.
    tokens.grant(ADMIN, 500, subject=subject)
    assert tokens.usage(ADMIN, subject=subject).token_quota == 2000
    _assert_ledger_folds_to_snapshot(store, subject)


def test_a_plan_change_retried_with_its_key_applies_once(store: AccountStore) -> None:
    """An admin's upgrade with ``reset_used`` retried with its key does not zero the usage
    spent since; the same key for another plan is a conflict."""
    subject = new_subject()
    tokens = service_over(store)
    tokens.consume(Principal(subject), 100)
    first = tokens.set_plan(
        ADMIN, "standard", subject=subject, reset_used=True, idempotency_key="upgrade-1"
    )
    tokens.consume(Principal(subject), 7)
    again = tokens.set_plan(
        ADMIN, "standard", subject=subject, reset_used=True, idempotency_key="upgrade-1"
    )

    assert again == first
    assert first.usage.token_used == 0
    assert tokens.usage(ADMIN, subject=subject).token_used == 7
    with pytest.raises(IdempotencyConflictError):
        tokens.set_plan(ADMIN, "premium", subject=subject, idempotency_key="upgrade-1")
    _assert_ledger_folds_to_snapshot(store, subject)


def test_idempotency_keys_and_subjects_compare_exactly(store: AccountStore) -> None:
    base = new_subject("Alice")
    variants = [base, base.lower(), base + " ", base + "é", base + "\N{ROCKET}"]
    tokens = service_over(store)
    for n, subject in enumerate(variants, start=1):
        tokens.consume(Principal(subject), n, idempotency_key="Key")
        tokens.consume(Principal(subject), 10 * n, idempotency_key="key ")
    for n, subject in enumerate(variants, start=1):
        stored = store.load(subject)
        assert stored is not None
        assert stored.token_used == 11 * n
        receipt = store.find_receipt(subject, subject, "Key")
        assert receipt is not None
        assert receipt.amount == n
    assert store.find_receipt(base, base, "key") is None


def test_the_longest_subjects_and_keys_the_core_accepts_are_stored(store: AccountStore) -> None:
    subject = new_subject()[:36] + "\N{GRINNING FACE}" * 219
    key = "\N{EURO SIGN}" * 255
    assert len(subject) == 255
    service_over(store).consume(Principal(subject), 5, idempotency_key=key)
    receipt = store.find_receipt(subject, subject, key)
    assert receipt is not None
    assert receipt.subject == subject


def test_quotas_beyond_32_bits_are_stored(store: AccountStore) -> None:
    subject = new_subject()
    tokens = service_over(store)
    for _ in range(3):
        tokens.grant(ADMIN, MAX_AMOUNT, subject=subject)
    tokens.consume(Principal(subject), MAX_AMOUNT)
    stored = store.load(subject)
    assert stored is not None
    assert (stored.token_quota, stored.token_used) == (3 * MAX_AMOUNT + 1000, MAX_AMOUNT)
    _assert_ledger_folds_to_snapshot(store, subject)


def test_an_upgrade_carries_over_the_remaining_tokens(store: AccountStore) -> None:
    subject = new_subject()
    tokens = service_over(store)
    tokens.consume(Principal(subject), 300)
    change = tokens.set_plan(ADMIN, "premium", subject=subject)
    assert change.message == "upgraded to premium with carry-over"
    stored = store.load(subject)
    assert stored is not None
    assert (stored.plan_id, stored.token_quota, stored.token_used) == ("premium", 50_700, 0)
    assert stored.plan_end_at == MID_JANUARY + timedelta(days=30)
    _assert_ledger_folds_to_snapshot(store, subject)


def test_a_downgrade_a_confirmation_and_an_admin_reset_are_stored(store: AccountStore) -> None:
    subject = new_subject()
    tokens = service_over(store)
    tokens.set_plan(ADMIN, "premium", subject=subject)
    tokens.consume(Principal(subject), 2000)
    assert tokens.set_plan(ADMIN, "premium", subject=subject).message == "plan confirmed"
    down = tokens.set_plan(Principal(subject), "standard")
    assert down.message == "downgraded to standard"
    assert (down.usage.token_quota, down.usage.token_used) == (10_000, 2000)
    tokens.set_plan(ADMIN, "standard", reset_used=True, subject=subject)
    stored = store.load(subject)
    assert stored is not None
    assert (stored.plan_id, stored.token_used) == ("standard", 0)
    _assert_ledger_folds_to_snapshot(store, subject)


def test_a_grant_adds_to_the_quota_and_lapses_at_the_next_month(store: AccountStore) -> None:
    subject = new_subject()
    clock = SettableClock(MID_JANUARY)
    tokens = service_over(store, clock)
    assert tokens.grant(ADMIN, 500, subject=subject).token_quota == 1500
    clock.set(datetime(2026, 2, 3, tzinfo=UTC))
    tokens.consume(Principal(subject), 1)
    stored = store.load(subject)
    assert stored is not None
    assert (stored.token_quota, stored.token_used) == (1000, 1)
    entries = _assert_ledger_folds_to_snapshot(store, subject)
    reset = entries[-2]
    assert (reset.kind, reset.at) == (EntryKind.PERIOD_RESET, datetime(2026, 2, 1, tzinfo=UTC))


def test_an_ended_term_is_written_with_the_next_change_at_its_end(store: AccountStore) -> None:
    subject = new_subject()
    clock = SettableClock(MID_JANUARY)
    tokens = service_over(store, clock)
    tokens.set_plan(ADMIN, "standard", subject=subject)
    clock.advance(days=35)
    assert tokens.usage(Principal(subject)).plan == "basic"
    stored = store.load(subject)
    assert stored is not None
    assert stored.plan_id == "standard"  # reads never write
    tokens.consume(Principal(subject), 10)
    entries = _assert_ledger_folds_to_snapshot(store, subject)
    expired = entries[-2]
    assert (expired.kind, expired.at) == (
        EntryKind.TERM_EXPIRED,
        MID_JANUARY + timedelta(days=30),
    )


def test_a_paid_renewal_commits_with_its_payment_and_event_mark(store: AccountStore) -> None:
    subject = new_subject()
    tokens = service_over(store)
    tokens.set_plan(ADMIN, "standard", subject=subject)
    created = _payment(subject, "standard")
    store.add_payment(created)
    paid = attrs.evolve(created, status=PaymentStatus.PAID, gateway_payment_id="pay_1")
    event = f"evt-{subject}"

    def decide(account: Account, now: datetime) -> Decision[Usage]:
        change = renew(account, CATALOG.get("standard"), now, payment_id=paid.id)
        return Decision(change, Usage.of(change.account), (paid, HandledEvent(event)))

    usage = update_directly(tokens, subject, decide)
    assert usage.token_quota == 21_000  # 10,000 + 1,000 carried over + 10,000 renewed
    assert usage.plan_end_at == MID_JANUARY + timedelta(days=60)
    assert store.find_payment(created.order_id) == paid
    assert store.event_seen(event)
    entries = _assert_ledger_folds_to_snapshot(store, subject)
    assert (entries[-1].kind, getattr(entries[-1].facts, "payment_id", None)) == (
        EntryKind.RENEWED,
        paid.id,
    )


# -- history ----------------------------------------------------------------------------


def test_history_pages_newest_first_and_stays_stable_while_entries_arrive(
    store: AccountStore,
) -> None:
    subject = new_subject()
    tokens = service_over(store)
    for n in range(1, 13):
        tokens.consume(Principal(subject), n)
    first = tokens.history(Principal(subject), limit=5)
    assert [e.version for e in first.entries] == [13, 12, 11, 10, 9]
    for n in range(3):
        tokens.consume(Principal(subject), 1, idempotency_key=f"late-{n}")
    second = tokens.history(Principal(subject), cursor=first.next_cursor, limit=5)
    assert [e.version for e in second.entries] == [8, 7, 6, 5, 4]
    third = tokens.history(Principal(subject), cursor=second.next_cursor, limit=5)
    assert [e.version for e in third.entries] == [3, 2, 1]
    assert third.next_cursor is None
    assert [e.amount for e in second.entries] == [7, 6, 5, 4, 3]


def test_history_of_an_unknown_subject_is_empty(store: AccountStore) -> None:
    assert list(store.history(new_subject(), before_version=10)) == []


# -- the commit's compare-and-write ------------------------------------------------------


def _opened(store: AccountStore) -> tuple[str, Account]:
    subject = new_subject()
    service_over(store).consume(Principal(subject), 100, idempotency_key="first")
    stored = store.load(subject)
    assert stored is not None
    return subject, stored


def _debit_commit(account: Account, *, expected: int, key: str | None = None) -> Commit:
    change = debit(account, 1, MID_JANUARY, idempotency_key=key)
    receipt = None
    if key is not None:
        receipt = DebitReceipt(
            subject=account.subject,
            caller=account.subject,
            idempotency_key=key,
            amount=1,
            at=MID_JANUARY,
            version=change.account.version,
            usage=Usage.of(change.account),
        )
    return Commit(change.account, expected, change.entries, () if receipt is None else (receipt,))


def _state(store: AccountStore, subject: str) -> tuple[Account | None, list[LedgerEntry]]:
    return store.load(subject), whole_ledger(store, subject)


def test_a_commit_on_a_stale_version_conflicts_and_writes_nothing(store: AccountStore) -> None:
    subject, stored = _opened(store)
    before = _state(store, subject)
    stale = attrs.evolve(stored, version=stored.version - 1)
    with pytest.raises(WriteConflictError):
        store.commit(_debit_commit(stale, expected=stale.version, key="new-key"))
    assert _state(store, subject) == before
    assert store.find_receipt(subject, subject, "new-key") is None


def test_creating_an_account_that_exists_conflicts_and_writes_nothing(store: AccountStore) -> None:
    subject, _ = _opened(store)
    before = _state(store, subject)
    fresh = open_account(subject, CATALOG, MID_JANUARY)
    with pytest.raises(WriteConflictError):
        store.commit(Commit(fresh.account, 0, fresh.entries))
    assert _state(store, subject) == before


def test_a_commit_reusing_a_stored_idempotency_key_conflicts_and_writes_nothing(
    store: AccountStore,
) -> None:
    subject, stored = _opened(store)
    before = _state(store, subject)
    first = store.find_receipt(subject, subject, "first")
    with pytest.raises(WriteConflictError):
        store.commit(_debit_commit(stored, expected=stored.version, key="first"))
    assert _state(store, subject) == before
    assert store.find_receipt(subject, subject, "first") == first


def test_a_commit_marking_a_handled_event_conflicts_and_writes_nothing(
    store: AccountStore,
) -> None:
    subject, stored = _opened(store)
    event = f"evt-{subject}"
    change = grant(stored, 5, MID_JANUARY)
    store.commit(Commit(change.account, stored.version, change.entries, (HandledEvent(event),)))
    before = _state(store, subject)
    again = grant(change.account, 5, MID_JANUARY)
    with pytest.raises(WriteConflictError):
        store.commit(
            Commit(again.account, change.account.version, again.entries, (HandledEvent(event),))
        )
    assert _state(store, subject) == before


def test_a_conflicting_commit_does_not_write_its_payment(store: AccountStore) -> None:
    subject, stored = _opened(store)
    payment = _payment(subject, "standard")
    stale = attrs.evolve(stored, version=stored.version - 1)
    change = grant(stale, 5, MID_JANUARY)
    with pytest.raises(WriteConflictError):
        store.commit(Commit(change.account, stale.version, change.entries, (payment,)))
    assert store.find_payment(payment.order_id) is None


# -- payments ----------------------------------------------------------------------------


def _payment(subject: str, plan_id: str, *, at: datetime = MID_JANUARY, n: int = 0) -> Payment:
    return Payment(
        id=f"pay-{subject[-12:]}-{n}",
        subject=subject,
        plan_id=plan_id,
        amount=CATALOG.get(plan_id).price,
        currency="INR",
        order_id=f"order_{subject}-{n}",
        status=PaymentStatus.CREATED,
        created_at=at,
        updated_at=at,
    )


def test_a_payment_is_found_by_its_order_id_exactly_as_added(store: AccountStore) -> None:
    payment = _payment(new_subject(), "premium")
    store.add_payment(payment)
    assert store.find_payment(payment.order_id) == payment
    assert store.find_payment(payment.order_id.upper()) is None


def test_a_packs_payment_keeps_its_pack_and_is_found_by_the_providers_payment_id(
    store: AccountStore,
) -> None:
    subject = new_subject()
    payment = attrs.evolve(_payment(subject, "premium"), plan_id="", pack_id="topup")
    store.add_payment(payment)
    assert store.find_payment(payment.order_id) == payment
    assert store.find_payment_by_gateway_id(f"pay_{subject}") is None  # not paid yet
    paid = attrs.evolve(payment, status=PaymentStatus.PAID, gateway_payment_id=f"pay_{subject}")
    store.update_payment(paid, expected_status=PaymentStatus.CREATED)
    assert store.find_payment_by_gateway_id(f"pay_{subject}") == paid
    assert store.find_payment_by_gateway_id(f"PAY_{subject}") is None  # exactly as stored
    refunded = attrs.evolve(paid, status=PaymentStatus.REFUNDED)
    store.update_payment(refunded, expected_status=PaymentStatus.PAID)
    assert store.find_payment(payment.order_id) == refunded


def test_a_commit_never_replaces_a_refunded_payment(store: AccountStore) -> None:
    """A confirmation that read the payment before a refund marked it refunded (a store
    without row locks lets them race) conflicts instead of buying the pack."""
    subject = new_subject()
    service_over(store).consume(Principal(subject), 10)
    payment = attrs.evolve(_payment(subject, "premium"), plan_id="", pack_id="topup")
    store.add_payment(payment)
    refunded = attrs.evolve(payment, status=PaymentStatus.REFUNDED)
    store.update_payment(refunded, expected_status=PaymentStatus.CREATED)
    stored = store.load(subject)
    assert stored is not None
    change = debit(stored, 5, MID_JANUARY)
    paid = attrs.evolve(payment, status=PaymentStatus.PAID, gateway_payment_id="pay_late")

    with pytest.raises(WriteConflictError):
        store.commit(Commit(change.account, stored.version, change.entries, (paid,)))

    assert store.find_payment(payment.order_id) == refunded
    assert store.load(subject) == stored


def test_adding_a_payment_twice_by_id_or_by_order_conflicts(store: AccountStore) -> None:
    payment = _payment(new_subject(), "premium")
    store.add_payment(payment)
    with pytest.raises(WriteConflictError):
        store.add_payment(attrs.evolve(payment, order_id=payment.order_id + "-other"))
    with pytest.raises(WriteConflictError):
        store.add_payment(attrs.evolve(payment, id=payment.id + "x"))
    assert store.find_payment(payment.order_id + "-other") is None


def test_payments_of_a_subject_are_newest_first_and_limited(store: AccountStore) -> None:
    subject = new_subject()
    made = [
        _payment(subject, "standard", at=MID_JANUARY + timedelta(microseconds=n), n=n)
        for n in range(4)
    ]
    for payment in made:
        store.add_payment(payment)
    store.add_payment(_payment(new_subject(), "standard"))
    assert list(store.payments_of(subject)) == made[::-1]
    assert list(store.payments_of(subject, limit=2)) == made[:1:-1]


def test_updating_a_payment_compares_its_status_and_marks_the_event(store: AccountStore) -> None:
    payment = _payment(new_subject(), "premium")
    store.add_payment(payment)
    later = MID_JANUARY + timedelta(minutes=5)
    failed = attrs.evolve(payment, status=PaymentStatus.FAILED, updated_at=later)
    event = f"evt-{payment.id}"
    store.update_payment(failed, expected_status=PaymentStatus.CREATED, event_id=event)
    assert store.find_payment(payment.order_id) == failed
    assert store.event_seen(event)
    assert not store.event_seen(event + "-other")
    paid = attrs.evolve(failed, status=PaymentStatus.PAID, gateway_payment_id="pay_9")
    with pytest.raises(WriteConflictError):
        store.update_payment(paid, expected_status=PaymentStatus.CREATED)
    with pytest.raises(WriteConflictError):
        store.update_payment(paid, expected_status=PaymentStatus.FAILED, event_id=event)
    assert store.find_payment(payment.order_id) == failed


def test_updating_an_unknown_payment_conflicts(store: AccountStore) -> None:
    with pytest.raises(WriteConflictError):
        store.update_payment(
            _payment(new_subject(), "standard"), expected_status=PaymentStatus.CREATED
        )


def test_idempotency_keys_belong_to_the_subject_and_the_caller(store: AccountStore) -> None:
    """A user pre-claiming its back end's key changes nothing for the back end: the admin's
    debit with the same key is another request, and debits in full."""
    subject = new_subject()
    tokens = service_over(store)
    tokens.grant(ADMIN, 5000, subject=subject)
    tokens.consume(Principal(subject), 1, idempotency_key="chat-44")

    backend = tokens.consume(ADMIN, 4000, idempotency_key="chat-44", subject=subject)

    assert (backend.amount, backend.replayed, backend.caller) == (4000, False, ADMIN.subject)
    assert backend.usage.token_used == 4001
    mine = store.find_receipt(subject, subject, "chat-44")
    assert mine is not None
    assert (mine.amount, mine.caller) == (1, subject)
    assert store.find_receipt(subject, ADMIN.subject, "chat-44") == backend
    # Each caller's retry replays its own receipt.
    again = tokens.consume(ADMIN, 4000, idempotency_key="chat-44", subject=subject)
    assert again == attrs.evolve(backend, replayed=True)
    with pytest.raises(IdempotencyConflictError):
        tokens.consume(Principal(subject), 4000, idempotency_key="chat-44")
    _assert_ledger_folds_to_snapshot(store, subject)


def test_a_same_plan_confirmation_that_changes_nothing_writes_nothing(
    store: AccountStore,
) -> None:
    subject = new_subject()
    tokens = service_over(store)
    tokens.consume(Principal(subject), 300)
    before = (store.load(subject), whole_ledger(store, subject))

    results = {tokens.set_plan(Principal(subject), "basic").message for _ in range(200)}
    results.add(tokens.set_plan(ADMIN, "basic", subject=subject, reset_used=False).message)

    assert results == {"plan confirmed"}
    assert (store.load(subject), whole_ledger(store, subject)) == before
    # An admin's reset does change something, and is written.
    reset = tokens.set_plan(ADMIN, "basic", subject=subject, reset_used=True)
    assert reset.usage.token_used == 0
    assert len(whole_ledger(store, subject)) == len(before[1]) + 1


def test_a_receipt_references_its_ledger_entry_and_replays_the_usage_recorded_there(
    store: AccountStore,
) -> None:
    """Stores keep a receipt's ledger version, not a copy of the usage: what a replay
    answers is the snapshot after the entry at that version, whatever came later."""
    subject, stored = _opened(store)
    change = debit(stored, 7, MID_JANUARY, idempotency_key="by-reference")
    elsewhere = Usage.of(attrs.evolve(change.account, token_used=0, plan_id="premium"))
    receipt = DebitReceipt(
        subject=subject,
        caller=subject,
        idempotency_key="by-reference",
        amount=7,
        at=MID_JANUARY,
        version=change.account.version,
        usage=elsewhere,  # not what the entry says: a store that copies it shows
    )
    store.commit(Commit(change.account, stored.version, change.entries, (receipt,)))
    service_over(store).consume(Principal(subject), 50)  # later changes do not leak in

    found = store.find_receipt(subject, subject, "by-reference")

    # The message, like the usage, is the entry's.
    assert found == attrs.evolve(
        receipt, usage=Usage.of(change.account), message=change.entries[-1].message
    )
    [entry] = [e for e in whole_ledger(store, subject) if e.version == receipt.version]
    assert found is not None
    assert found.usage == Usage.of(entry.after)
