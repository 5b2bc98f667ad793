"""A state machine over pack purchases: orders, confirmations by verify or webhook (again
and again, in any order), refunds (before or after the confirmation, replayed), spending
and clock jumps, against an independent model of which payments made a lot. However the
steps interleave, a payment makes at most one lot, only when paid and not refunded
first; a refunded payment's lot has nothing left to spend; every lot stays within its
credits."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from payments_support import event_body, payment_service
from test_packs import CATALOG

from tokenplans import (
    EntryKind,
    InsufficientTokensError,
    LotSource,
    LotStatus,
    Payment,
    PlanCatalog,
    Principal,
    TokenService,
    TooManyOrdersError,
)
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.razorpay import OfflineGateway

ALICE = Principal("alice")


def _refund(payment: Payment, paid_as: str) -> bytes:
    entity = {
        "id": paid_as,
        "entity": "payment",
        "amount": payment.amount,
        "order_id": payment.order_id,
    }
    refund = {"id": "rfnd_" + uuid.uuid4().hex[:14], "entity": "refund", "payment_id": paid_as}
    body = {
        "entity": "event",
        "event": "refund.processed",
        "payload": {"refund": {"entity": refund}, "payment": {"entity": entity}},
    }
    return json.dumps(body).encode()


class Packs(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = SettableClock()
        self.store = InMemoryStore()
        self.tokens = TokenService(self.store, PlanCatalog.from_mapping(CATALOG), self.clock)
        self.gateway = OfflineGateway("state-machine-secret")
        self.payments = payment_service(self.tokens, self.gateway)
        self.orders: list[tuple[Payment, str]] = []  # each order and its provider payment id
        #: The model: payment id -> "created" | "paid" | "refunded", and the lots made.
        self.status: dict[str, str] = {}
        self.made: set[str] = set()

    @rule(pack=st.sampled_from(["topup", "forever"]))
    def order(self, pack: str) -> None:
        try:
            checkout = self.payments.create_order(ALICE, pack=pack)
        except TooManyOrdersError:
            return
        if checkout.reused:
            assert self.status[checkout.payment.id] == "created"
            return
        self.orders.append((checkout.payment, "pay_" + uuid.uuid4().hex[:14]))
        self.status[checkout.payment.id] = "created"

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), by_webhook=st.booleans())
    def confirm(self, data: st.DataObject, by_webhook: bool) -> None:
        payment, paid_as = data.draw(st.sampled_from(self.orders))
        if by_webhook:
            body = event_body("payment.captured", payment, paid_as)
            headers = self.gateway.webhook_headers(body, "evt_" + uuid.uuid4().hex[:14])
            applied = self.payments.handle_webhook(body=body, headers=headers).status == "applied"
        else:
            proof = self.gateway.checkout_proof(payment.order_id, paid_as)
            applied = self.payments.confirm(ALICE, proof).applied
        assert applied == (self.status[payment.id] == "created")
        if applied:
            self.status[payment.id] = "paid"
            self.made.add(payment.id)

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        payment, paid_as = data.draw(st.sampled_from(self.orders))
        body = _refund(payment, paid_as)
        headers = self.gateway.webhook_headers(body, "evt_" + uuid.uuid4().hex[:14])
        status = self.payments.handle_webhook(body=body, headers=headers).status
        expected = "already_applied" if self.status[payment.id] == "refunded" else "refunded"
        assert status == expected
        self.status[payment.id] = "refunded"

    @rule(amount=st.integers(1, 40_000))
    def spend(self, amount: int) -> None:
        with contextlib.suppress(InsufficientTokensError):
            self.tokens.consume(ALICE, amount)

    @rule(days=st.integers(0, 40), seconds=st.integers(0, 86_400))
    def wait(self, days: int, seconds: int) -> None:
        self.clock.advance(timedelta(days=days, seconds=seconds))

    @invariant()
    def one_lot_per_paid_payment_and_none_left_after_a_refund(self) -> None:
        history = self.store.history(ALICE.subject, limit=10_000)
        bought = [e.facts.lot_id for e in history if e.kind is EntryKind.LOT_PURCHASED]
        assert sorted(bought) == sorted(self.made)
        for lot in self.tokens.usage(ALICE).lots:
            assert 0 <= lot.used + lot.held <= lot.amount or lot.source is LotSource.PLAN
            if lot.source is LotSource.PURCHASED:
                assert lot.lot_id in self.made
                assert lot.amount <= 30_000
                if self.status[lot.lot_id] == "refunded":
                    assert lot.status is LotStatus.VOIDED or lot.remaining == 0


Packs.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_pack_purchases_and_refunds = Packs.TestCase
