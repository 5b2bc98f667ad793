"""Top-up packs, on every store: a confirmed payment makes one ``purchased`` lot (verify
and webhook racing, a payment confirmed again, a lot that has left the account); nobody
gets a lot without paying (another user's order, a refund before the confirmation); a
refund voids what is left of the lot once per event; expiry at the boundary instant; the
order-reuse rule never stops a second purchase of the same pack."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from payments_support import PaymentsUnderTest, event_body, handle_webhook, payment_service
from test_payment_races import race

from tokenplans import (
    MAX_AMOUNT,
    AccountStore,
    CatalogError,
    EntryKind,
    InvalidRequestError,
    LotSource,
    Payment,
    PaymentNotFoundError,
    PaymentStatus,
    PlanCatalog,
    Principal,
    TokenService,
    UnknownPackError,
    WebhookStatus,
    fold,
)
from tokenplans.testing import SettableClock
from tokenplans_adapters.razorpay import OfflineGateway
from tokenplans_adapters.stripe import OfflineStripe
from tokenplans_adapters.stripe.signatures import signature_header

CATALOG = {
    "basic": {"price": 0, "tokens": 1000},
    "premium": {"price": 9900, "tokens": 50000, "duration_days": 30},
    "packs": {
        "topup": {"name": "Top-up", "price": 500, "credits": 5000, "expires_after_days": 30},
        "forever": {"price": 2000, "credits": 30000, "priority": 5},
    },
}


@pytest.fixture
def tokens(store: AccountStore, clock: SettableClock) -> TokenService:
    return TokenService(store, PlanCatalog.from_mapping(CATALOG), clock)


def _gateway_id() -> str:
    return "pay_" + uuid.uuid4().hex[:14]


def _event_id() -> str:
    return "evt_" + uuid.uuid4().hex[:14]


def _buy(
    payments: PaymentsUnderTest, gateway: OfflineGateway, who: Principal, pack: str = "topup"
) -> Payment:
    """Order ``pack`` and confirm it by verify; the paid payment."""
    checkout = payments.create_order(who, pack=pack)
    paid_as = _gateway_id()
    outcome = payments.confirm(who, gateway.checkout_proof(checkout.order_id, paid_as))
    assert outcome.applied
    return outcome.payment


def _webhook(
    payments: PaymentsUnderTest,
    gateway: OfflineGateway,
    body: bytes,
    event_id: str | None = None,
) -> WebhookStatus:
    signature = gateway.sign_webhook(body)
    outcome = handle_webhook(
        payments, body=body, signature=signature, event_id=event_id or _event_id()
    )
    return outcome.status


def _refund_body(payment: Payment, paid_as: str | None = None) -> bytes:
    """Razorpay's ``refund.processed``: the refund, and the refunded payment."""
    paid_as = paid_as or payment.gateway_payment_id or _gateway_id()
    document = {
        "entity": "event",
        "event": "refund.processed",
        "contains": ["refund", "payment"],
        "payload": {
            "refund": {
                "entity": {
                    "id": "rfnd_" + uuid.uuid4().hex[:14],
                    "entity": "refund",
                    "amount": payment.amount // 2,  # a partial refund voids the lot too
                    "payment_id": paid_as,
                    "status": "processed",
                }
            },
            "payment": {
                "entity": {
                    "id": paid_as,
                    "entity": "payment",
                    "amount": payment.amount,
                    "currency": payment.currency,
                    "status": "refunded",
                    "order_id": payment.order_id,
                }
            },
        },
    }
    return json.dumps(document).encode()


def _purchased(payments: PaymentsUnderTest, who: Principal) -> list[Any]:
    return [lot for lot in payments.tokens.usage(who).lots if lot.source is LotSource.PURCHASED]


def _entries(payments: PaymentsUnderTest, who: Principal, kind: EntryKind) -> list[Any]:
    return [e for e in payments.tokens.store.history(who.subject, limit=500) if e.kind is kind]


def test_a_confirmed_pack_payment_makes_one_purchased_lot(
    payments: PaymentsUnderTest, gateway: OfflineGateway, alice: Principal, clock: SettableClock
) -> None:
    checkout = payments.create_order(alice, pack="topup")
    assert (checkout.payment.pack_id, checkout.payment.plan_id) == ("topup", "")
    assert (checkout.amount, checkout.plan_name) == (500, "Top-up")

    payment = payments.confirm(alice, gateway.checkout_proof(checkout.order_id, _gateway_id()))

    (lot,) = _purchased(payments, alice)
    assert (lot.lot_id, lot.amount, lot.used, lot.priority) == (payment.payment.id, 5000, 0, 0)
    assert lot.expires_at == clock.now() + timedelta(days=30)
    usage = payments.tokens.usage(alice)
    assert (usage.plan, usage.token_quota, usage.remaining) == ("basic", 6000, 6000)
    assert payment.payment.status is PaymentStatus.PAID


@pytest.mark.parametrize("mix", ["verify+webhook", "verify+verify", "webhook+webhook"])
def test_racing_confirmations_of_a_pack_make_one_lot(
    payments: PaymentsUnderTest, gateway: OfflineGateway, alice: Principal, mix: str
) -> None:
    for round_ in range(1, 5):
        checkout = payments.create_order(alice, pack="topup")
        paid_as = _gateway_id()
        body = event_body("payment.captured", checkout.payment, paid_as)

        def by_verify(order_id: str = checkout.order_id, paid_as: str = paid_as) -> object:
            return payments.confirm(alice, gateway.checkout_proof(order_id, paid_as))

        def by_webhook(body: bytes = body) -> object:
            return _webhook(payments, gateway, body)

        calls = {"verify": by_verify, "webhook": by_webhook}
        results = race(*(calls[name] for name in mix.split("+")))

        assert not [r for r in results if isinstance(r, Exception)]
        assert len(_purchased(payments, alice)) == round_  # one more lot, not two
        assert len(_entries(payments, alice, EntryKind.LOT_PURCHASED)) == round_
    assert payments.tokens.usage(alice).token_quota == 1000 + 4 * 5000
    stored = payments.tokens.store.load(alice.subject)
    assert stored is not None
    assert fold(payments.tokens.store.history(alice.subject, limit=500)[::-1]) == stored


def test_a_payment_confirmed_again_buys_nothing_even_after_its_lot_has_left(
    payments: PaymentsUnderTest, gateway: OfflineGateway, alice: Principal, clock: SettableClock
) -> None:
    checkout = payments.create_order(alice, pack="topup")
    paid_as = _gateway_id()
    proof = gateway.checkout_proof(checkout.order_id, paid_as)
    assert payments.confirm(alice, proof).applied
    assert not payments.confirm(alice, proof).applied
    body = event_body("payment.captured", checkout.payment, paid_as)
    assert _webhook(payments, gateway, body) is WebhookStatus.ALREADY_APPLIED

    # The lot is spent and expires: it leaves the account. Confirming again adds nothing.
    payments.tokens.consume(alice, 6000)
    clock.advance(days=31)
    assert _purchased(payments, alice) == []
    assert not payments.confirm(alice, proof).applied
    assert _webhook(payments, gateway, body) is WebhookStatus.ALREADY_APPLIED
    assert _purchased(payments, alice) == []
    assert len(_entries(payments, alice, EntryKind.LOT_PURCHASED)) == 1


def test_nobody_confirms_another_users_pack_order(
    payments: PaymentsUnderTest, gateway: OfflineGateway, alice: Principal, bob: Principal
) -> None:
    checkout = payments.create_order(alice, pack="topup")

    with pytest.raises(PaymentNotFoundError):
        payments.confirm(bob, gateway.checkout_proof(checkout.order_id, _gateway_id()))

    assert _purchased(payments, bob) == []
    assert _purchased(payments, alice) == []
    with pytest.raises(PaymentNotFoundError):  # nor with a forged signature for its own
        payments.confirm(alice, {**gateway.checkout_proof("order_NotOurs000001", "pay_X")})


def test_buying_the_same_pack_twice_makes_two_lots(
    payments: PaymentsUnderTest, gateway: OfflineGateway, alice: Principal
) -> None:
    first = payments.create_order(alice, pack="topup")
    # An unpaid order for the same pack is handed back (two clicks, one order) ...
    assert payments.create_order(alice, pack="topup").order_id == first.order_id
    assert payments.create_order(alice, pack="forever").order_id != first.order_id
    payments.confirm(alice, gateway.checkout_proof(first.order_id, _gateway_id()))
    # ... but once paid, the next purchase is a new order.
    second = _buy(payments, gateway, alice)
    third = _buy(payments, gateway, alice, "forever")

    lots = {lot.lot_id: lot for lot in _purchased(payments, alice)}
    assert set(lots) == {first.payment.id, second.id, third.id}
    assert (lots[third.id].expires_at, lots[third.id].priority) == (None, 5)
    assert payments.tokens.usage(alice).token_quota == 1000 + 5000 + 5000 + 30000


def test_a_pack_expires_at_its_instant_and_not_before(
    payments: PaymentsUnderTest, gateway: OfflineGateway, alice: Principal, clock: SettableClock
) -> None:
    bought_at = clock.now()
    payment = _buy(payments, gateway, alice)
    payments.tokens.consume(alice, 1200)  # the allowance first, then 200 of the pack
    expires_at = bought_at + timedelta(days=30)

    clock.set(expires_at - timedelta(microseconds=1))
    (lot,) = _purchased(payments, alice)
    assert (lot.lot_id, lot.used, lot.remaining) == (payment.id, 200, 4800)

    clock.set(expires_at)
    assert _purchased(payments, alice) == []
    payments.tokens.consume(alice, 1)  # writes the expiry, stamped at its instant
    (expired,) = _entries(payments, alice, EntryKind.LOT_EXPIRED)
    assert (expired.at, expired.amount) == (expires_at, 4800)


def test_a_refund_voids_only_what_is_left_of_the_lot(
    payments: PaymentsUnderTest, gateway: OfflineGateway, alice: Principal
) -> None:
    payment = _buy(payments, gateway, alice)
    payments.tokens.consume(alice, 2500)  # the allowance's 1000, then 1500 of the pack

    assert _webhook(payments, gateway, _refund_body(payment)) is WebhookStatus.REFUNDED

    usage = payments.tokens.usage(alice)
    assert _purchased(payments, alice) == []  # nothing held: it leaves the sums
    assert (usage.token_quota, usage.token_used, usage.remaining) == (1000, 1000, 0)
    (voided,) = _entries(payments, alice, EntryKind.LOT_VOIDED)
    assert (voided.amount, voided.actor) == (3500, "razorpay:webhook")
    stored = payments.tokens.store.find_payment(payment.order_id)
    assert stored is not None
    assert stored.status is PaymentStatus.REFUNDED


def test_a_refund_replayed_or_repeated_voids_once(
    payments: PaymentsUnderTest, gateway: OfflineGateway, alice: Principal
) -> None:
    payment = _buy(payments, gateway, alice)
    _buy(payments, gateway, alice)  # another lot, which a refund of the first keeps
    body, event_id = _refund_body(payment), _event_id()

    results = race(*[lambda: _webhook(payments, gateway, body, event_id)] * 3)

    assert sorted(map(str, results)) == ["duplicate", "duplicate", "refunded"]
    assert _webhook(payments, gateway, body, event_id) is WebhookStatus.DUPLICATE
    assert _webhook(payments, gateway, _refund_body(payment)) is WebhookStatus.ALREADY_APPLIED
    assert len(_entries(payments, alice, EntryKind.LOT_VOIDED)) == 1
    assert payments.tokens.usage(alice).token_quota == 1000 + 5000


def test_a_refund_before_the_confirmation_means_the_payment_buys_nothing(
    payments: PaymentsUnderTest, gateway: OfflineGateway, alice: Principal
) -> None:
    checkout = payments.create_order(alice, pack="topup")
    paid_as = _gateway_id()
    refund = _refund_body(checkout.payment, paid_as)
    assert _webhook(payments, gateway, refund) is WebhookStatus.REFUNDED

    captured = event_body("payment.captured", checkout.payment, paid_as)
    assert _webhook(payments, gateway, captured) is WebhookStatus.ALREADY_APPLIED
    outcome = payments.confirm(alice, gateway.checkout_proof(checkout.order_id, paid_as))
    assert not outcome.applied
    assert _purchased(payments, alice) == []
    # A refunded order is closed: the next order for the pack is a new one.
    assert payments.create_order(alice, pack="topup").order_id != checkout.order_id


def test_a_refund_of_a_plan_payment_is_ignored_as_before(
    payments: PaymentsUnderTest, gateway: OfflineGateway, alice: Principal
) -> None:
    checkout = payments.create_order(alice, "premium")
    paid_as = _gateway_id()
    payments.confirm(alice, gateway.checkout_proof(checkout.order_id, paid_as))
    before = payments.tokens.usage(alice)

    refund = _refund_body(checkout.payment, paid_as)
    assert _webhook(payments, gateway, refund) is WebhookStatus.IGNORED

    assert payments.tokens.usage(alice) == before
    stored = payments.tokens.store.find_payment(checkout.order_id)
    assert stored is not None
    assert stored.status is PaymentStatus.PAID


def test_an_order_names_exactly_one_known_pack_or_plan(
    payments: PaymentsUnderTest, alice: Principal
) -> None:
    with pytest.raises(InvalidRequestError):
        payments.create_order(alice)
    with pytest.raises(InvalidRequestError):
        payments.create_order(alice, "premium", pack="topup")
    with pytest.raises(UnknownPackError):
        payments.create_order(alice, pack="nope")
    assert payments.tokens.store.payments_of(alice.subject) == []


def test_stripe_charge_refunded_voids_the_packs_lot(tokens: TokenService, alice: Principal) -> None:
    now = 1_767_225_600.0
    stripe = OfflineStripe("whsec_packs-test", now=lambda: now)
    payments = payment_service(tokens, stripe)
    checkout = payments.create_order(alice, pack="topup")
    intent = "pi_" + uuid.uuid4().hex[:20]
    session = {
        "id": checkout.order_id,
        "object": "checkout.session",
        "amount_total": 500,
        "payment_intent": intent,
        "payment_status": "paid",
    }

    def deliver(kind: str, obj: dict[str, Any]) -> WebhookStatus:
        body = json.dumps({"id": _event_id(), "type": kind, "data": {"object": obj}}).encode()
        headers = {"Stripe-Signature": signature_header([b"whsec_packs-test"], int(now), body)}
        return payments.handle_webhook(body=body, headers=headers, provider="stripe").status

    assert deliver("checkout.session.completed", session) is WebhookStatus.APPLIED
    assert len(_purchased(payments, alice)) == 1
    charge = {"id": "ch_1", "object": "charge", "amount": 500, "payment_intent": intent}
    assert deliver("charge.refunded", charge) is WebhookStatus.REFUNDED
    assert _purchased(payments, alice) == []
    other = {**charge, "payment_intent": "pi_NotOurs"}
    assert deliver("charge.refunded", other) is WebhookStatus.IGNORED


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"price": 0, "credits": 5}, "positive"),
        ({"price": 5, "credits": 0}, "credits"),
        ({"price": 5, "credits": MAX_AMOUNT + 1}, "credits"),
        ({"price": 5, "credits": 10**30}, "credits"),
        ({"price": 5}, "missing"),
        ({"price": 5, "credits": 5, "tokens": 5}, "unknown"),
        ({"price": 5, "credits": 5, "expires_after_days": 0}, "expires_after_days"),
        ({"price": 5, "credits": 5, "priority": 1001}, "priority"),
        ({"price": True, "credits": 5}, "positive"),
    ],
)
def test_a_bad_pack_is_refused_at_load(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(CatalogError, match=problem):
        PlanCatalog.from_mapping({"basic": {"price": 0, "tokens": 1}, "packs": {"p": fields}})


def test_a_plan_named_packs_still_reads_as_a_plan() -> None:
    catalog = PlanCatalog.from_mapping(
        {"basic": {"price": 0, "tokens": 1}, "packs": {"price": 5, "tokens": 9}}
    )
    assert [plan.id for plan in catalog] == ["basic", "packs"]
    assert catalog.packs == ()


def test_the_documented_example_a_pack_mid_month_then_an_upgrade(
    payments: PaymentsUnderTest, gateway: OfflineGateway, alice: Principal, clock: SettableClock
) -> None:
    """docs/credit-lots.md, "A pack bought mid-month, then an upgrade", step by step."""
    usage = payments.tokens.usage
    payments.tokens.consume(alice, 400)
    pack = _buy(payments, gateway, alice)  # 15 January, 12:00
    assert (usage(alice).token_quota, usage(alice).remaining) == (6000, 5600)

    spent = payments.tokens.consume(alice, 1000)  # the allowance first (it ends sooner)
    (debit,) = [e for e in _entries(payments, alice, EntryKind.DEBITED) if e.amount == 1000]
    assert [(d.lot_id, d.amount) for d in debit.facts.draws] == [("plan", 600), (pack.id, 400)]
    assert spent.usage.remaining == 4600

    clock.set(clock.now().replace(month=2, day=3))  # past the reset of 1 February
    assert (usage(alice).token_quota, usage(alice).token_used) == (6000, 400)

    premium = payments.create_order(alice, "premium")
    payments.confirm(alice, gateway.checkout_proof(premium.order_id, _gateway_id()))
    after = usage(alice)
    lots = {lot.source: lot for lot in after.lots}
    assert (after.plan, after.token_quota, after.token_used) == ("premium", 56000, 400)
    assert (lots[LotSource.CARRY_OVER].amount, lots[LotSource.PLAN].amount) == (1000, 50000)
    bought = lots[LotSource.PURCHASED]
    assert (bought.lot_id, bought.amount, bought.used) == (pack.id, 5000, 400)
    # Under premium the pack expires first (14 February), so it burns first now.
    assert after.lots[0].lot_id == pack.id
