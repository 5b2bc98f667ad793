"""PaymentService on every store: orders, verify, ownership, and the numbers of an
upgrade with carry-over and of a paid renewal when a payment is confirmed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from payments_support import payment_entries, payment_service, verify

from tokenplans import (
    MAX_OPEN_ORDERS,
    ORDER_REUSE_WINDOW,
    AccountStore,
    EntryKind,
    InvalidRequestError,
    PaymentError,
    PaymentNotFoundError,
    PaymentService,
    PaymentStatus,
    PermissionDeniedError,
    PlanCatalog,
    Principal,
    TokenService,
    TooManyOrdersError,
    UnknownPlanError,
)
from tokenplans.testing import SettableClock
from tokenplans_adapters.razorpay import OfflineGateway


def pay(payments: PaymentService, gateway: OfflineGateway, principal: Principal, plan: str):  # type: ignore[no-untyped-def]
    """Buy ``plan`` the way a browser does: order, checkout (signed offline), verify."""
    return confirm(payments, gateway, principal, payments.create_order(principal, plan))


def confirm(payments: PaymentService, gateway: OfflineGateway, principal: Principal, checkout):  # type: ignore[no-untyped-def]
    """Pay ``checkout``'s order offline and verify it as ``principal``."""
    payment_id = gateway.new_payment_id()
    return verify(
        payments,
        principal,
        order_id=checkout.order_id,
        payment_id=payment_id,
        signature=gateway.sign_payment(checkout.order_id, payment_id),
    )


# -- orders ------------------------------------------------------------------------


def test_an_order_carries_the_catalog_price_and_what_checkout_needs(
    payments: PaymentService, alice: Principal, clock: SettableClock
) -> None:
    checkout = payments.create_order(alice, "premium")

    assert (checkout.amount, checkout.currency, checkout.public["key_id"]) == (
        9900,
        "INR",
        "rzp_offline",
    )
    assert checkout.order_id.startswith("order_")
    assert checkout.plan_name == "Premium"
    stored = payments.tokens.store.find_payment(checkout.order_id)
    assert stored == checkout.payment
    assert stored is not None
    assert stored.status is PaymentStatus.CREATED
    assert (stored.subject, stored.plan_id, stored.amount) == (alice.subject, "premium", 9900)
    assert 1 <= len(stored.id) <= 40
    assert stored.created_at == clock.now()


def test_an_order_for_the_free_plan_is_refused_and_nothing_is_stored(
    payments: PaymentService, alice: Principal
) -> None:
    with pytest.raises(PaymentError) as refused:
        payments.create_order(alice, "basic")

    assert refused.value.reason == "free_plan"
    assert payments.payments(alice) == []


def test_an_order_for_a_plan_below_the_current_one_is_refused(
    payments: PaymentService, alice: Principal, admin: Principal
) -> None:
    payments.tokens.set_plan(admin, "premium", subject=alice.subject)

    with pytest.raises(PaymentError) as refused:
        payments.create_order(alice, "standard")

    assert refused.value.reason == "lower_plan"
    assert payments.payments(alice) == []


def test_an_order_for_an_unknown_plan_is_refused(
    payments: PaymentService, alice: Principal
) -> None:
    with pytest.raises(UnknownPlanError):
        payments.create_order(alice, "platinum")

    assert payments.payments(alice) == []


def test_a_user_cannot_order_for_someone_else(
    payments: PaymentService, alice: Principal, bob: Principal
) -> None:
    with pytest.raises(PermissionDeniedError):
        payments.create_order(bob, "premium", subject=alice.subject)

    assert payments.payments(alice) == []


# -- upgrade and renewal numbers --------------------------------------------------


def test_basic_user_with_700_used_pays_for_premium_and_gets_50300_with_a_30_day_term(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal, clock: SettableClock
) -> None:
    payments.tokens.consume(alice, 700)

    outcome = pay(payments, gateway, alice, "premium")

    assert outcome.applied
    assert outcome.message == "upgraded to premium with carry-over"
    usage = payments.tokens.usage(alice)
    assert (usage.plan, usage.token_quota, usage.token_used) == ("premium", 50300, 0)
    assert usage.plan_end_at == clock.now() + timedelta(days=30)
    assert outcome.usage == usage
    assert outcome.payment.status is PaymentStatus.PAID
    [entry] = payment_entries(payments.tokens.store, alice.subject)
    assert (entry.kind, getattr(entry.facts, "payment_id", None), entry.actor) == (
        EntryKind.PLAN_CHANGED,
        outcome.payment.id,
        "razorpay:verify",
    )


def test_premium_user_paying_for_premium_again_renews_from_the_end_of_the_term(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal, clock: SettableClock
) -> None:
    first = pay(payments, gateway, alice, "premium")
    first_end = first.usage.plan_end_at
    assert first_end is not None
    clock.advance(days=10)
    payments.tokens.consume(alice, 2000)

    renewal = pay(payments, gateway, alice, "premium")

    usage = payments.tokens.usage(alice)
    assert (usage.plan, usage.token_quota, usage.token_used) == ("premium", 101000, 2000)
    assert usage.plan_end_at == first_end + timedelta(days=30)
    assert renewal.usage == usage
    kinds = [e.kind for e in payment_entries(payments.tokens.store, alice.subject)]
    assert kinds == [EntryKind.PLAN_CHANGED, EntryKind.RENEWED]


def test_standard_user_paying_for_premium_upgrades_with_carry_over(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal
) -> None:
    pay(payments, gateway, alice, "standard")
    payments.tokens.consume(alice, 4000)

    pay(payments, gateway, alice, "premium")

    usage = payments.tokens.usage(alice)
    assert (usage.plan, usage.token_quota, usage.token_used) == ("premium", 57000, 0)


def test_a_payment_confirmed_after_an_admin_moved_the_account_higher_credits_its_tokens(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal, admin: Principal
) -> None:
    checkout = payments.create_order(alice, "standard")
    payments.tokens.set_plan(admin, "premium", subject=alice.subject)
    payment_id = gateway.new_payment_id()

    outcome = verify(
        payments,
        alice,
        order_id=checkout.order_id,
        payment_id=payment_id,
        signature=gateway.sign_payment(checkout.order_id, payment_id),
    )

    usage = payments.tokens.usage(alice)
    assert (usage.plan, usage.token_quota, usage.token_used) == ("premium", 61000, 0)
    assert outcome.payment.status is PaymentStatus.PAID
    [entry] = payment_entries(payments.tokens.store, alice.subject)
    assert (entry.kind, entry.quota_delta) == (EntryKind.GRANTED, 10000)
    assert entry.message == "paid for standard while on premium: 10000 tokens credited"


# -- verify: signatures, idempotency, ownership ------------------------------------


def test_verifying_the_same_payment_twice_applies_it_once(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal
) -> None:
    checkout = payments.create_order(alice, "premium")
    payment_id = gateway.new_payment_id()
    signature = gateway.sign_payment(checkout.order_id, payment_id)

    first = verify(
        payments, alice, order_id=checkout.order_id, payment_id=payment_id, signature=signature
    )
    second = verify(
        payments, alice, order_id=checkout.order_id, payment_id=payment_id, signature=signature
    )

    assert (first.applied, second.applied) == (True, False)
    assert second.payment == first.payment
    assert second.usage == first.usage
    assert len(payment_entries(payments.tokens.store, alice.subject)) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda o, p, s: (o + "x", p, s), id="tampered order id"),
        pytest.param(lambda o, p, s: (o, p + "x", s), id="tampered payment id"),
        pytest.param(lambda o, p, s: (o, p, s[:-1] + ("0" if s[-1] != "0" else "1")), id="sig"),
        pytest.param(lambda o, p, s: (o, p, ""), id="empty signature"),
        pytest.param(lambda o, p, s: (o, p, "z" * 64), id="non-hex signature"),
        pytest.param(lambda o, p, s: (o, p, "é" * 64), id="non-ascii signature"),
        pytest.param(lambda o, p, s: (o, p, s[:32]), id="short signature"),
        pytest.param(lambda o, p, s: (o, p, s + "00"), id="long signature"),
    ],
)
def test_a_bad_payment_signature_is_refused_and_nothing_changes(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal, tamper: object
) -> None:
    checkout = payments.create_order(alice, "premium")
    payment_id = gateway.new_payment_id()
    signature = gateway.sign_payment(checkout.order_id, payment_id)
    order_id, payment_id, signature = tamper(checkout.order_id, payment_id, signature)  # type: ignore[operator]

    with pytest.raises(PaymentError):
        verify(payments, alice, order_id=order_id, payment_id=payment_id, signature=signature)

    assert payments.tokens.store.find_payment(checkout.order_id) == checkout.payment
    assert payments.tokens.store.load(alice.subject) is None
    assert payments.tokens.usage(alice).plan == "basic"


def test_a_signature_made_for_another_order_is_refused(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal
) -> None:
    cheap = payments.create_order(alice, "standard")
    dear = payments.create_order(alice, "premium")
    payment_id = gateway.new_payment_id()

    with pytest.raises(PaymentError) as refused:
        verify(
            payments,
            alice,
            order_id=dear.order_id,
            payment_id=payment_id,
            signature=gateway.sign_payment(cheap.order_id, payment_id),
        )

    assert refused.value.reason == "bad_signature"
    assert {p.status for p in payments.payments(alice)} == {PaymentStatus.CREATED}
    assert payments.tokens.store.load(alice.subject) is None


def test_an_order_id_that_is_not_text_is_an_invalid_request(
    payments: PaymentService, alice: Principal
) -> None:
    with pytest.raises(InvalidRequestError):
        verify(payments, alice, order_id="", payment_id="pay_x", signature="0" * 64)


def test_verifying_an_unknown_order_is_not_found(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal
) -> None:
    with pytest.raises(PaymentNotFoundError):
        verify(
            payments,
            alice,
            order_id="order_DoesNotExist1",
            payment_id="pay_X",
            signature=gateway.sign_payment("order_DoesNotExist1", "pay_X"),
        )


def test_a_user_cannot_verify_someone_elses_order_even_with_a_valid_signature(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal, bob: Principal
) -> None:
    checkout = payments.create_order(alice, "premium")
    payment_id = gateway.new_payment_id()

    with pytest.raises(PaymentNotFoundError):
        verify(
            payments,
            bob,
            order_id=checkout.order_id,
            payment_id=payment_id,
            signature=gateway.sign_payment(checkout.order_id, payment_id),
        )

    assert payments.tokens.store.find_payment(checkout.order_id) == checkout.payment
    assert payments.tokens.store.load(alice.subject) is None
    assert payments.tokens.store.load(bob.subject) is None


def test_an_admin_may_verify_a_users_payment_and_is_recorded_as_the_actor(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal, admin: Principal
) -> None:
    confirm(payments, gateway, admin, payments.create_order(alice, "premium"))

    assert payments.tokens.usage(alice).plan == "premium"
    [entry] = payment_entries(payments.tokens.store, alice.subject)
    assert entry.actor == admin.subject


def test_a_user_lists_only_its_own_payments(
    payments: PaymentService, alice: Principal, bob: Principal, admin: Principal
) -> None:
    mine = payments.create_order(alice, "premium")
    theirs = payments.create_order(bob, "standard")

    assert [p.order_id for p in payments.payments(alice)] == [mine.order_id]
    assert [p.order_id for p in payments.payments(bob)] == [theirs.order_id]
    with pytest.raises(PermissionDeniedError):
        payments.payments(bob, subject=alice.subject)
    assert [p.order_id for p in payments.payments(admin, subject=alice.subject)] == [mine.order_id]


def test_ordering_the_same_plan_again_hands_back_the_open_order(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal, clock: SettableClock
) -> None:
    """100 POSTs of one order made 100 gateway orders; now one, until it is paid or ages."""
    first = payments.create_order(alice, "premium")
    again = [payments.create_order(alice, "premium") for _ in range(100)]

    assert {c.order_id for c in again} == {first.order_id}
    assert all(c.reused and c.public == first.public for c in again)
    assert not first.reused
    assert len(payments.payments(alice)) == 1
    # Past the window, or once paid, a new order is made.
    clock.advance(ORDER_REUSE_WINDOW)
    later = payments.create_order(alice, "premium")
    assert later.order_id != first.order_id
    confirm(payments, gateway, alice, later)
    assert payments.create_order(alice, "premium").order_id not in {
        first.order_id,
        later.order_id,
    }


def test_a_subject_holds_at_most_five_open_orders(
    store: AccountStore, clock: SettableClock, gateway: OfflineGateway, alice: Principal
) -> None:
    plans = {"free": {"price": 0, "tokens": 100}}
    plans |= {
        f"p{n}": {"price": 100 * n, "tokens": 1000 * n, "duration_days": 30} for n in range(1, 8)
    }
    payments = payment_service(TokenService(store, PlanCatalog.from_mapping(plans), clock), gateway)
    for n in range(1, MAX_OPEN_ORDERS + 1):
        payments.create_order(alice, f"p{n}")
        clock.advance(minutes=1)

    with pytest.raises(TooManyOrdersError) as refused:
        payments.create_order(alice, "p7")

    assert refused.value.reason == "too_many_open_orders"
    # The oldest leaves the window 55 minutes later (it was made 5 minutes ago).
    assert refused.value.retry_after_seconds == 55 * 60
    assert len(payments.payments(alice)) == MAX_OPEN_ORDERS
    assert payments.create_order(alice, "p1").reused  # an open one is still handed back
    clock.advance(minutes=55)
    assert not payments.create_order(alice, "p7").reused


def test_payments_are_listed_newest_first(
    payments: PaymentService, alice: Principal, clock: SettableClock
) -> None:
    first = payments.create_order(alice, "standard")
    clock.advance(minutes=1)
    second = payments.create_order(alice, "premium")

    assert [p.id for p in payments.payments(alice)] == [second.payment.id, first.payment.id]


def test_an_account_whose_term_ended_while_paying_for_a_renewal_is_upgraded_instead(
    payments: PaymentService,
    gateway: OfflineGateway,
    alice: Principal,
    clock: SettableClock,
    tokens: TokenService,
) -> None:
    pay(payments, gateway, alice, "standard")
    checkout = payments.create_order(alice, "standard")
    clock.advance(days=31)  # the term ends before the renewal is confirmed
    payment_id = gateway.new_payment_id()

    outcome = verify(
        payments,
        alice,
        order_id=checkout.order_id,
        payment_id=payment_id,
        signature=gateway.sign_payment(checkout.order_id, payment_id),
    )

    assert outcome.message == "upgraded to standard with carry-over"
    usage = tokens.usage(alice)
    assert (usage.plan, usage.token_quota, usage.token_used) == ("standard", 11000, 0)
    assert usage.plan_end_at == clock.now() + timedelta(days=30)


def test_a_paid_plan_without_a_term_can_be_bought_once_but_not_renewed(
    store: AccountStore, clock: SettableClock, gateway: OfflineGateway, alice: Principal
) -> None:
    catalog = PlanCatalog.from_mapping(
        {
            "free": {"price": 0, "tokens": 100},
            "lifetime": {"price": 50000, "tokens": 5000},
        }
    )
    payments = payment_service(TokenService(store, catalog, clock), gateway)

    outcome = pay(payments, gateway, alice, "lifetime")

    assert (outcome.usage.plan, outcome.usage.token_quota) == ("lifetime", 5100)
    assert outcome.usage.plan_end_at is None
    with pytest.raises(PaymentError) as refused:
        payments.create_order(alice, "lifetime")
    assert refused.value.reason == "no_term"
