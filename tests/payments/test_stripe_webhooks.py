"""Stripe's webhook through the payment service, on every store: which Checkout Session
events apply a plan, which fail a payment, which are ignored; a bad or stale signature
changes nothing; and exactly once under concurrent redeliveries, two workers, and a
second event about the same payment racing them."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from payments_support import PaymentsUnderTest, payment_entries, payment_service

from tokenplans import (
    PaymentError,
    PaymentService,
    PaymentStatus,
    Principal,
    TokenService,
    WebhookStatus,
    fold,
)
from tokenplans_adapters.stripe import OfflineStripe
from tokenplans_adapters.stripe.signatures import signature_header

SECRET = "whsec_stripe-webhook-test-secret"
NOW = 1_767_225_600.0
DELIVERIES = 12


@pytest.fixture
def stripe() -> OfflineStripe:
    return OfflineStripe(SECRET, now=lambda: NOW)


@pytest.fixture
def payments(tokens: TokenService, stripe: OfflineStripe) -> PaymentsUnderTest:
    return payment_service(tokens, stripe)


def _deliver(payments: PaymentService, body: bytes, headers: dict[str, str]) -> WebhookStatus:
    return payments.handle_webhook(body=body, headers=headers, provider="stripe").status


def _event(
    kind: str, session_id: str, *, amount: int | None, payment_status: str = "paid"
) -> bytes:
    session = {
        "id": session_id,
        "object": "checkout.session",
        "amount_total": amount,
        "payment_intent": "pi_3Q6kVcA2yOx4Zu0A1b2C3d4",
        "payment_status": payment_status,
    }
    return json.dumps(
        {"id": "evt_1Fixed0000000000001", "type": kind, "data": {"object": session}}
    ).encode()


def test_a_paid_completed_session_applies_the_plan_once(
    payments: PaymentsUnderTest, stripe: OfflineStripe, alice: Principal
) -> None:
    checkout = payments.create_order(alice, "premium", provider="stripe")
    assert checkout.public["checkout_url"].endswith(checkout.order_id)
    body, headers = stripe.webhook_delivery(
        "checkout.session.completed", session_id=checkout.order_id, amount=checkout.amount
    )

    assert _deliver(payments, body, headers) is WebhookStatus.APPLIED
    assert _deliver(payments, body, headers) is WebhookStatus.DUPLICATE
    paid = payments.tokens.store.find_payment(checkout.order_id)
    assert paid is not None
    assert (paid.status, paid.provider) == (PaymentStatus.PAID, "stripe")
    assert paid.gateway_payment_id is not None
    assert paid.gateway_payment_id.startswith("pi_")
    assert payments.tokens.usage(alice).plan == "premium"
    (entry,) = payment_entries(payments.tokens.store, alice.subject)
    assert entry.actor == "stripe:webhook"


@pytest.mark.parametrize(
    "failing", ["checkout.session.async_payment_failed", "checkout.session.expired"]
)
def test_failing_events_mark_the_payment_failed_and_a_later_success_still_applies(
    payments: PaymentsUnderTest, stripe: OfflineStripe, alice: Principal, failing: str
) -> None:
    checkout = payments.create_order(alice, "standard", provider="stripe")

    body, headers = stripe.webhook_delivery(failing, session_id=checkout.order_id)
    assert _deliver(payments, body, headers) is WebhookStatus.FAILED
    failed = payments.tokens.store.find_payment(checkout.order_id)
    assert failed is not None
    assert failed.status is PaymentStatus.FAILED
    assert payments.tokens.usage(alice).plan == "basic"

    body, headers = stripe.webhook_delivery(
        "checkout.session.async_payment_succeeded", session_id=checkout.order_id
    )
    assert _deliver(payments, body, headers) is WebhookStatus.APPLIED
    # Out of order: the failure redelivered later never moves a paid payment back.
    body, headers = stripe.webhook_delivery(failing, session_id=checkout.order_id)
    assert _deliver(payments, body, headers) is WebhookStatus.ALREADY_APPLIED
    assert payments.tokens.usage(alice).plan == "standard"


@pytest.mark.parametrize(
    ("kind", "payment_status"),
    [
        ("checkout.session.completed", "unpaid"),  # a delayed method: not paid yet
        ("checkout.session.completed", "no_payment_required"),
        ("charge.refunded", "paid"),  # accepted and ignored until credit packs exist
        ("customer.created", "paid"),
    ],
)
def test_other_events_are_accepted_and_change_nothing(
    payments: PaymentsUnderTest,
    stripe: OfflineStripe,
    alice: Principal,
    kind: str,
    payment_status: str,
) -> None:
    checkout = payments.create_order(alice, "premium", provider="stripe")
    body = _event(kind, checkout.order_id, amount=checkout.amount, payment_status=payment_status)

    assert _deliver(payments, body, stripe.webhook_headers(body)) is WebhookStatus.IGNORED
    found = payments.tokens.store.find_payment(checkout.order_id)
    assert found is not None
    assert found.status is PaymentStatus.CREATED
    assert payments.tokens.usage(alice).plan == "basic"


def test_a_different_amount_or_a_session_not_ours_is_ignored(
    payments: PaymentsUnderTest, stripe: OfflineStripe, alice: Principal
) -> None:
    checkout = payments.create_order(alice, "premium", provider="stripe")
    for body in (
        _event("checkout.session.completed", checkout.order_id, amount=checkout.amount - 1),
        _event("checkout.session.completed", "cs_test_NotOurs", amount=checkout.amount),
    ):
        assert _deliver(payments, body, stripe.webhook_headers(body)) is WebhookStatus.IGNORED
    assert payments.tokens.usage(alice).plan == "basic"


@pytest.mark.parametrize(
    "forge",
    [
        lambda body: {},
        lambda body: {"Stripe-Signature": "garbage"},
        lambda body: {"Stripe-Signature": signature_header((b"whsec_other",), int(NOW), body)},
        lambda body: {
            "Stripe-Signature": signature_header((SECRET.encode(),), int(NOW) - 301, body)
        },
        lambda body: {
            "Stripe-Signature": signature_header((SECRET.encode(),), int(NOW), body + b" ")
        },
    ],
    ids=["missing", "malformed", "wrong secret", "stale", "another body"],
)
def test_a_bad_or_stale_signature_is_refused_and_changes_nothing(
    payments: PaymentsUnderTest, alice: Principal, forge: Callable[[bytes], dict[str, str]]
) -> None:
    checkout = payments.create_order(alice, "premium", provider="stripe")
    body = _event("checkout.session.completed", checkout.order_id, amount=checkout.amount)

    with pytest.raises(PaymentError) as refused:
        _deliver(payments, body, forge(body))

    assert refused.value.reason == "bad_signature"
    found = payments.tokens.store.find_payment(checkout.order_id)
    assert found is not None
    assert found.status is PaymentStatus.CREATED
    assert not payments.tokens.store.event_seen("evt_1Fixed0000000000001")
    assert payments.tokens.usage(alice).plan == "basic"


def test_stripe_has_no_browser_proof(payments: PaymentsUnderTest, alice: Principal) -> None:
    from tokenplans import InvalidRequestError  # noqa: PLC0415

    with pytest.raises(InvalidRequestError, match="webhook only"):
        payments.confirm(alice, {}, provider="stripe")


def test_concurrent_redeliveries_and_a_racing_event_apply_the_plan_exactly_once(
    tokens: TokenService, stripe: OfflineStripe, alice: Principal
) -> None:
    """12 deliveries of one event, split across two workers (two services over the same
    store), race a second event about the same payment (another event id): one applies
    the plan, the others change nothing; the ledger folds to the stored account."""
    workers = [payment_service(tokens, stripe), payment_service(tokens, stripe)]
    store = tokens.store
    tokens.consume(alice, 300)
    checkout = workers[0].create_order(alice, "premium", provider="stripe")
    body, headers = stripe.webhook_delivery(
        "checkout.session.completed", session_id=checkout.order_id, amount=checkout.amount
    )
    other, other_headers = stripe.webhook_delivery(
        "checkout.session.async_payment_succeeded",
        session_id=checkout.order_id,
        amount=checkout.amount,
    )
    calls = [(workers[i % 2], body, headers) for i in range(DELIVERIES)] + [
        (workers[1], other, other_headers)
    ]
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        service, delivered, signed = calls[index]
        barrier.wait()
        try:
            results[index] = _deliver(service, delivered, signed)
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not [r for r in results if not isinstance(r, WebhookStatus)], results
    assert results.count(WebhookStatus.APPLIED) == 1
    assert set(results) <= {
        WebhookStatus.APPLIED,
        WebhookStatus.ALREADY_APPLIED,
        WebhookStatus.DUPLICATE,
    }
    paid = store.find_payment(checkout.order_id)
    assert paid is not None
    assert paid.status is PaymentStatus.PAID
    assert len(payment_entries(store, alice.subject)) == 1
    usage = tokens.usage(alice)
    assert (usage.plan, usage.token_quota) == ("premium", 50000 + 1000 - 300)
    after = store.load(alice.subject)
    assert after is not None
    assert fold(reversed(store.history(alice.subject, limit=500))) == after
    # A later redelivery of either changes nothing (the event that applied the plan is a
    # duplicate; the other finds the payment paid).
    for service, delivered, signed in calls[-2:]:
        assert _deliver(service, delivered, signed) in (
            WebhookStatus.DUPLICATE,
            WebhookStatus.ALREADY_APPLIED,
        )
    assert len(payment_entries(store, alice.subject)) == 1
