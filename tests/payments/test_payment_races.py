"""Confirmations racing in threads, on every store: whatever arrives first (verify, the
webhook, a replay of either), the plan is applied once and the ledger shows one payment
entry. The loser of each race conflicts on the account version, re-reads the payment,
finds it paid and changes nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest
from payments_support import event_body, handle_webhook, payment_entries, verify

from tokenplans import PaymentService, PaymentStatus, Principal
from tokenplans_adapters.razorpay import OfflineGateway

ROUNDS = 8


def race(*calls: Callable[[], object]) -> list[object]:
    """Run ``calls`` at once (released together by a barrier); their results or errors."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("used", [0, 700], ids=["never-stored account", "basic with 700 used"])
@pytest.mark.parametrize("mix", ["verify+webhook", "verify+verify", "webhook+webhook"])
def test_racing_confirmations_apply_the_plan_once(
    payments: PaymentService, gateway: OfflineGateway, alice: Principal, mix: str, used: int
) -> None:
    store = payments.tokens.store
    if used:
        payments.tokens.consume(alice, used)
    expected_quota = 50000 + 1000 - used
    for _ in range(ROUNDS):
        checkout = payments.create_order(alice, "premium")
        payment_id = "pay_" + uuid.uuid4().hex[:14]
        body = event_body("payment.captured", checkout.payment, payment_id)
        event_id = "evt_" + uuid.uuid4().hex[:14]

        def by_verify(order_id: str = checkout.order_id, payment_id: str = payment_id) -> object:
            return verify(
                payments,
                alice,
                order_id=order_id,
                payment_id=payment_id,
                signature=gateway.sign_payment(order_id, payment_id),
            )

        def by_webhook(body: bytes = body, event_id: str = event_id) -> object:
            return handle_webhook(
                payments, body=body, signature=gateway.sign_webhook(body), event_id=event_id
            )

        calls = {"verify": by_verify, "webhook": by_webhook}
        results = race(*(calls[name] for name in mix.split("+")))

        assert not [r for r in results if isinstance(r, Exception)]
        paid = store.find_payment(checkout.order_id)
        assert paid is not None
        assert paid.status is PaymentStatus.PAID
        assert [
            getattr(e.facts, "payment_id", None) for e in payment_entries(store, alice.subject)
        ].count(paid.id) == 1
        assert payments.tokens.usage(alice).token_quota == expected_quota
        expected_quota += 50000  # the next round renews premium

    assert len(payment_entries(store, alice.subject)) == ROUNDS
