"""Webhooks through PaymentService on every store: deliveries are at least once and
unordered, so replays apply nothing twice and nothing ever moves a payment back."""

from __future__ import annotations

import json
import uuid

import pytest
from payments_support import event_body, handle_webhook, payment_entries, payment_service, verify

from tokenplans import (
    REFERENCE_PLAN_CONFIGS,
    Checkout,
    PaymentError,
    PaymentService,
    PaymentStatus,
    PlanCatalog,
    Principal,
    TokenService,
    WebhookStatus,
)
from tokenplans_adapters.razorpay import OfflineGateway, RazorpayGateway


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex[:14]


def deliver(
    payments: PaymentService,
    gateway: OfflineGateway,
    body: bytes,
    event_id: str | None = None,
):  # type: ignore[no-untyped-def]
    return handle_webhook(
        payments,
        body=body,
        signature=gateway.sign_webhook(body),
        event_id=event_id or new_event_id(),
    )


@pytest.fixture
def checkout(payments: PaymentService, alice: Principal) -> Checkout:
    payments.tokens.consume(alice, 700)
    return payments.create_order(alice, "premium")


def state(payments: PaymentService, checkout: Checkout) -> tuple[object, ...]:
    """Everything a webhook could change: the payment and the account."""
    store = payments.tokens.store
    return (store.find_payment(checkout.order_id), store.load(checkout.payment.subject))


@pytest.mark.parametrize("event", ["payment.captured", "order.paid"])
def test_a_confirming_event_applies_the_plan_once(
    payments: PaymentService,
    gateway: OfflineGateway,
    checkout: Checkout,
    alice: Principal,
    event: str,
) -> None:
    event_id = new_event_id()

    outcome = deliver(payments, gateway, event_body(event, checkout.payment, "pay_A"), event_id)

    assert (outcome.status, outcome.order_id) == (WebhookStatus.APPLIED, checkout.order_id)
    usage = payments.tokens.usage(alice)
    assert (usage.plan, usage.token_quota, usage.token_used) == ("premium", 50300, 0)
    paid = payments.tokens.store.find_payment(checkout.order_id)
    assert paid is not None
    assert (paid.status, paid.gateway_payment_id) == (PaymentStatus.PAID, "pay_A")
    [entry] = payment_entries(payments.tokens.store, alice.subject)
    assert (getattr(entry.facts, "payment_id", None), entry.actor) == (
        checkout.payment.id,
        "razorpay:webhook",
    )
    assert payments.tokens.store.event_seen(event_id)


def test_the_same_event_delivered_twice_is_applied_once(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout, alice: Principal
) -> None:
    body = event_body("payment.captured", checkout.payment, "pay_A")
    event_id = new_event_id()

    first = deliver(payments, gateway, body, event_id)
    second = deliver(payments, gateway, body, event_id)

    assert (first.status, second.status) == (WebhookStatus.APPLIED, WebhookStatus.DUPLICATE)
    assert payments.tokens.usage(alice).token_quota == 50300
    assert len(payment_entries(payments.tokens.store, alice.subject)) == 1


def test_the_same_payment_under_another_event_id_is_applied_once(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout, alice: Principal
) -> None:
    captured = deliver(payments, gateway, event_body("payment.captured", checkout.payment, "pay_A"))
    order_paid = deliver(payments, gateway, event_body("order.paid", checkout.payment, "pay_A"))

    assert captured.status is WebhookStatus.APPLIED
    assert order_paid.status is WebhookStatus.ALREADY_APPLIED
    assert payments.tokens.usage(alice).token_quota == 50300
    assert len(payment_entries(payments.tokens.store, alice.subject)) == 1


def test_a_webhook_after_verify_applies_nothing_more(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout, alice: Principal
) -> None:
    verify(
        payments,
        alice,
        order_id=checkout.order_id,
        payment_id="pay_A",
        signature=gateway.sign_payment(checkout.order_id, "pay_A"),
    )

    outcome = deliver(payments, gateway, event_body("payment.captured", checkout.payment, "pay_A"))

    assert outcome.status is WebhookStatus.ALREADY_APPLIED
    assert payments.tokens.usage(alice).token_quota == 50300
    [entry] = payment_entries(payments.tokens.store, alice.subject)
    assert entry.actor == "razorpay:verify"


def test_payment_failed_after_order_paid_leaves_the_payment_paid(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout, alice: Principal
) -> None:
    deliver(payments, gateway, event_body("order.paid", checkout.payment, "pay_A"))
    before = state(payments, checkout)

    outcome = deliver(payments, gateway, event_body("payment.failed", checkout.payment, "pay_A"))

    assert outcome.status is WebhookStatus.ALREADY_APPLIED
    assert state(payments, checkout) == before
    assert payments.tokens.usage(alice).plan == "premium"


def test_payment_failed_marks_a_created_payment_failed_and_leaves_the_account(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout, alice: Principal
) -> None:
    account_before = payments.tokens.store.load(alice.subject)
    event_id = new_event_id()

    outcome = deliver(
        payments, gateway, event_body("payment.failed", checkout.payment, "pay_F"), event_id
    )

    assert outcome.status is WebhookStatus.FAILED
    failed = payments.tokens.store.find_payment(checkout.order_id)
    assert failed is not None
    assert (failed.status, failed.gateway_payment_id) == (PaymentStatus.FAILED, "pay_F")
    assert payments.tokens.store.load(alice.subject) == account_before
    assert payments.tokens.store.event_seen(event_id)


def test_a_failed_payment_retried_successfully_is_applied(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout, alice: Principal
) -> None:
    deliver(payments, gateway, event_body("payment.failed", checkout.payment, "pay_F"))

    outcome = deliver(payments, gateway, event_body("payment.captured", checkout.payment, "pay_S"))

    assert outcome.status is WebhookStatus.APPLIED
    paid = payments.tokens.store.find_payment(checkout.order_id)
    assert paid is not None
    assert (paid.status, paid.gateway_payment_id) == (PaymentStatus.PAID, "pay_S")
    assert payments.tokens.usage(alice).token_quota == 50300


def test_a_replayed_failure_event_is_a_duplicate(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout
) -> None:
    body = event_body("payment.failed", checkout.payment, "pay_F")
    event_id = new_event_id()
    deliver(payments, gateway, body, event_id)

    assert deliver(payments, gateway, body, event_id).status is WebhookStatus.DUPLICATE


@pytest.mark.parametrize(
    "event", ["refund.created", "payment.authorized", "subscription.charged", "order.notified"]
)
def test_an_event_we_do_not_act_on_is_accepted_and_ignored(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout, event: str
) -> None:
    before = state(payments, checkout)

    outcome = deliver(payments, gateway, event_body(event, checkout.payment, "pay_A"))

    assert outcome.status is WebhookStatus.IGNORED
    assert state(payments, checkout) == before


def test_an_event_for_an_order_that_is_not_ours_is_ignored(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout
) -> None:
    before = state(payments, checkout)
    foreign = {
        "entity": "event",
        "event": "payment.captured",
        "payload": {"payment": {"entity": {"id": "pay_Z", "order_id": "order_NotOurs0000001"}}},
    }

    outcome = deliver(payments, gateway, json.dumps(foreign).encode())

    assert outcome.status is WebhookStatus.IGNORED
    assert state(payments, checkout) == before


def test_an_event_for_a_different_amount_is_ignored(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout
) -> None:
    before = state(payments, checkout)

    outcome = deliver(
        payments, gateway, event_body("payment.captured", checkout.payment, "pay_A", amount=100)
    )

    assert outcome.status is WebhookStatus.IGNORED
    assert state(payments, checkout) == before


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda body, sig: (body, "0" * 64), id="bad signature"),
        pytest.param(lambda body, sig: (body, None), id="missing signature"),
        pytest.param(lambda body, sig: (body, ""), id="empty signature"),
        pytest.param(lambda body, sig: (body, "é" + sig[1:]), id="non-ascii signature"),
        pytest.param(lambda body, sig: (body, "zz" + sig[2:]), id="non-hex signature"),
        pytest.param(
            lambda body, sig: (json.dumps(json.loads(body), indent=1).encode(), sig),
            id="re-serialised body",
        ),
        pytest.param(lambda body, sig: (body + b"\n", sig), id="extra newline"),
    ],
)
def test_a_webhook_that_fails_its_signature_is_refused_and_nothing_changes(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout, spoil: object
) -> None:
    body = event_body("payment.captured", checkout.payment, "pay_A")
    event_id = new_event_id()
    before = state(payments, checkout)
    spoilt_body, signature = spoil(body, gateway.sign_webhook(body))  # type: ignore[operator]

    with pytest.raises(PaymentError) as refused:
        handle_webhook(payments, body=spoilt_body, signature=signature, event_id=event_id)

    assert refused.value.reason == "bad_signature"
    assert state(payments, checkout) == before
    assert not payments.tokens.store.event_seen(event_id)


def test_a_signed_body_that_is_not_an_event_is_refused(
    payments: PaymentService, gateway: OfflineGateway
) -> None:
    for body in (b"not json", b"[1, 2]", b'{"payload": {}}', b"\xff\xfe"):
        with pytest.raises(PaymentError) as refused:
            handle_webhook(
                payments, body=body, signature=gateway.sign_webhook(body), event_id=new_event_id()
            )
        assert refused.value.reason == "malformed_event"


def test_a_webhook_signed_with_the_previous_secret_is_applied_during_rotation(
    tokens: TokenService, checkout: Checkout, alice: Principal
) -> None:
    body = event_body("payment.captured", checkout.payment, "pay_A")
    signed_with_previous = OfflineGateway("previous-webhook-secret").sign_webhook(body)
    with RazorpayGateway(
        "rzp_test_x",
        "key-secret",
        ["current-webhook-secret", "previous-webhook-secret"],
        api_url="http://127.0.0.1:9",  # never contacted: webhooks make no request
    ) as razorpay:
        outcome = handle_webhook(
            payment_service(tokens, razorpay),
            body=body,
            signature=signed_with_previous,
            event_id=new_event_id(),
        )

    assert outcome.status is WebhookStatus.APPLIED
    assert tokens.usage(alice).plan == "premium"


def test_a_webhook_without_an_event_id_is_still_applied_once(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout, alice: Principal
) -> None:
    body = event_body("payment.captured", checkout.payment, "pay_A")

    first = handle_webhook(payments, body=body, signature=gateway.sign_webhook(body), event_id=None)
    second = handle_webhook(
        payments, body=body, signature=gateway.sign_webhook(body), event_id=None
    )

    assert (first.status, second.status) == (WebhookStatus.APPLIED, WebhookStatus.ALREADY_APPLIED)
    assert len(payment_entries(payments.tokens.store, alice.subject)) == 1


def test_a_payment_for_a_plan_no_longer_offered_is_accepted_and_left_for_an_operator(
    payments: PaymentService, gateway: OfflineGateway, checkout: Checkout, alice: Principal
) -> None:
    """Refusing would make Razorpay redeliver for days; applying is impossible (no plan)."""
    without_premium = PlanCatalog.from_mapping(
        {key: value for key, value in REFERENCE_PLAN_CONFIGS.items() if key != "premium"}
    )
    tokens = payments.tokens
    narrowed = payment_service(
        TokenService(tokens.store, without_premium, tokens.clock), payments.gateway
    )
    before = state(payments, checkout)

    outcome = deliver(narrowed, gateway, event_body("order.paid", checkout.payment, "pay_A"))

    assert (outcome.status, outcome.order_id) == (WebhookStatus.IGNORED, checkout.order_id)
    assert state(payments, checkout) == before
