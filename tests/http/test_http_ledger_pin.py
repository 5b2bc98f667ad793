"""The ledger's answer pinned byte for byte: every entry kind, with every fact it carries.

Entries keep their kind-specific facts (a debit's idempotency key, a hold's id and
overage, a payment's id) however the core stores them; the wire shows them flattened,
``null`` where a kind has none, in the order pinned here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from http_support import ALICE, ROOT, identity
from starlette.testclient import TestClient

from tokenplans import ModelUsage, PlanCatalog, Principal, TokenService, UnitPricer
from tokenplans.ports import Commit
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.http import create_app

NOON = datetime(2026, 1, 15, 12, tzinfo=UTC)
HOLDS = "/api/tokens/holds"


def _ledger_of_every_kind() -> TestClient:
    store, clock, catalog = InMemoryStore(), SettableClock(NOON), PlanCatalog.default()
    service = TokenService(store, catalog, clock, pricer=UnitPricer())
    client = TestClient(create_app(service, identity()))
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 7, "idempotency_key": "k-1"})
    service.consume(Principal("alice"), usage=ModelUsage("gpt-x", input_tokens=3, output_tokens=2))
    client.post("/api/admin/accounts/alice/grant", headers=ROOT, json={"amount": 50})
    client.post(HOLDS, headers=ALICE, json={"amount": 5, "hold_id": "h-free"})
    client.post(f"{HOLDS}/h-free/release", headers=ALICE)
    client.post(HOLDS, headers=ALICE, json={"amount": 2, "hold_id": "h-old", "ttl_seconds": 60})
    client.post(HOLDS, headers=ALICE, json={"amount": 10, "hold_id": "h-set"})
    client.post(f"{HOLDS}/h-set/settle", headers=ALICE, json={"amount": 1100})
    clock.advance(minutes=5)
    client.post("/api/admin/accounts/alice/set-plan", headers=ROOT, json={"plan": "premium"})
    # A paid renewal, as the payment service commits it (the rules say what it records).
    from tokenplans._rules.quota import renew  # noqa: PLC0415 - the one way to a paid entry here

    account = service.usage(Principal("alice"))
    stored = store.load("alice")
    assert stored is not None
    assert account.plan == "premium"
    renewed = renew(stored, catalog.get("premium"), clock.now(), payment_id="pay_1", actor="root")
    store.commit(Commit(renewed.account, stored.version, renewed.entries))
    clock.set(NOON + timedelta(days=70))
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 1})
    clock.set(NOON + timedelta(days=80))
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 1})
    return client


def test_the_ledger_is_byte_for_byte_what_it_was() -> None:
    client = _ledger_of_every_kind()

    answer = client.get("/api/admin/accounts/alice/ledger", headers=ROOT, params={"limit": 100})

    assert answer.status_code == 200
    assert answer.content == PINNED


#: The answer the code before facts-per-kind gave (newest first), with the credit lots'
#: facts (``draws``, ``lot_id``), null on every entry of an account with only its plan lot.
PINNED = (
    b'{"entries":[{"version":16,"kind":"debited","at":"2026-04-05T12:00:00Z",'
    b'"amount":1,"quota_delta":0,"used_delta":1,"idempotency_key":null,'
    b'"payment_id":null,"actor":"alice","message":"debited 1","held_delta":0,'
    b'"hold_id":null,"overage":null,"draws":null,"lot_id":null,"credits":null,"price_version":null,"usage":null,'
    b'"plan":"basic","token_quota":1000,"token_used":1,"remaining":999,'
    b'"plan_end_at":null,"token_held":0},{"version":15,"kind":"period_reset",'
    b'"at":"2026-04-01T00:00:00Z","amount":null,"quota_delta":0,"used_delta":-1,'
    b'"idempotency_key":null,"payment_id":null,"actor":null,'
    b'"message":"new calendar month","held_delta":0,"hold_id":null,"overage":null,'
    b'"draws":null,"lot_id":null,'
    b'"credits":null,"price_version":null,"usage":null,"plan":"basic",'
    b'"token_quota":1000,"token_used":0,"remaining":1000,"plan_end_at":null,'
    b'"token_held":0},{"version":14,"kind":"debited","at":"2026-03-26T12:00:00Z",'
    b'"amount":1,"quota_delta":0,"used_delta":1,"idempotency_key":null,'
    b'"payment_id":null,"actor":"alice","message":"debited 1","held_delta":0,'
    b'"hold_id":null,"overage":null,"draws":null,"lot_id":null,"credits":null,"price_version":null,"usage":null,'
    b'"plan":"basic","token_quota":1000,"token_used":1,"remaining":999,'
    b'"plan_end_at":null,"token_held":0},{"version":13,"kind":"term_expired",'
    b'"at":"2026-03-16T12:05:00Z","amount":null,"quota_delta":-99000,"used_delta":0,'
    b'"idempotency_key":null,"payment_id":null,"actor":null,'
    b'"message":"premium term ended; back on basic","held_delta":0,"hold_id":null,'
    b'"overage":null,"draws":null,"lot_id":null,"credits":null,"price_version":null,"usage":null,"plan":"basic",'
    b'"token_quota":1000,"token_used":0,"remaining":1000,"plan_end_at":null,'
    b'"token_held":0},{"version":12,"kind":"renewed","at":"2026-01-15T12:05:00Z",'
    b'"amount":null,"quota_delta":50000,"used_delta":0,"idempotency_key":null,'
    b'"payment_id":"pay_1","actor":"root",'
    b'"message":"renewed premium until 2026-03-16T12:05:00Z","held_delta":0,'
    b'"hold_id":null,"overage":null,"draws":null,"lot_id":null,"credits":null,"price_version":null,"usage":null,'
    b'"plan":"premium","token_quota":100000,"token_used":0,"remaining":100000,'
    b'"plan_end_at":"2026-03-16T12:05:00Z","token_held":0},{"version":11,'
    b'"kind":"plan_changed","at":"2026-01-15T12:05:00Z","amount":null,'
    b'"quota_delta":48950,"used_delta":-1112,"idempotency_key":null,"payment_id":null,'
    b'"actor":"root","message":"upgraded to premium with carry-over","held_delta":0,'
    b'"hold_id":null,"overage":null,"draws":null,"lot_id":null,"credits":null,"price_version":null,"usage":null,'
    b'"plan":"premium","token_quota":50000,"token_used":0,"remaining":50000,'
    b'"plan_end_at":"2026-02-14T12:05:00Z","token_held":0},{"version":10,'
    b'"kind":"hold_expired","at":"2026-01-15T12:01:00Z","amount":2,"quota_delta":0,'
    b'"used_delta":0,"idempotency_key":null,"payment_id":null,"actor":null,'
    b'"message":"hold h-old expired: 2 released","held_delta":-2,"hold_id":"h-old",'
    b'"overage":null,"draws":null,"lot_id":null,"credits":null,"price_version":null,"usage":null,"plan":"basic",'
    b'"token_quota":1050,"token_used":1112,"remaining":0,"plan_end_at":null,'
    b'"token_held":0},{"version":9,"kind":"hold_settled","at":"2026-01-15T12:00:00Z",'
    b'"amount":1100,"quota_delta":0,"used_delta":1100,"idempotency_key":null,'
    b'"payment_id":null,"actor":"alice","message":"hold h-set settled: 1100 used,'
    b' 64 over the quota","held_delta":-10,"hold_id":"h-set","overage":64,'
    b'"draws":null,"lot_id":null,'
    b'"credits":null,"price_version":null,"usage":null,"plan":"basic",'
    b'"token_quota":1050,"token_used":1112,"remaining":0,"plan_end_at":null,'
    b'"token_held":2},{"version":8,"kind":"hold_placed","at":"2026-01-15T12:00:00Z",'
    b'"amount":10,"quota_delta":0,"used_delta":0,"idempotency_key":null,'
    b'"payment_id":null,"actor":"alice",'
    b'"message":"hold h-set placed: 10 until 2026-01-15T12:05:00+00:00",'
    b'"held_delta":10,"hold_id":"h-set","overage":null,"draws":null,"lot_id":null,"credits":null,'
    b'"price_version":null,"usage":null,"plan":"basic","token_quota":1050,'
    b'"token_used":12,"remaining":1026,"plan_end_at":null,"token_held":12},'
    b'{"version":7,"kind":"hold_placed","at":"2026-01-15T12:00:00Z","amount":2,'
    b'"quota_delta":0,"used_delta":0,"idempotency_key":null,"payment_id":null,'
    b'"actor":"alice","message":"hold h-old placed: 2 until 2026-01-15T12:01:00+00:00",'
    b'"held_delta":2,"hold_id":"h-old","overage":null,"draws":null,"lot_id":null,"credits":null,'
    b'"price_version":null,"usage":null,"plan":"basic","token_quota":1050,'
    b'"token_used":12,"remaining":1036,"plan_end_at":null,"token_held":2},{"version":6,'
    b'"kind":"hold_released","at":"2026-01-15T12:00:00Z","amount":5,"quota_delta":0,'
    b'"used_delta":0,"idempotency_key":null,"payment_id":null,"actor":"alice",'
    b'"message":"hold h-free released: 5 free again","held_delta":-5,'
    b'"hold_id":"h-free","overage":null,"draws":null,"lot_id":null,"credits":null,"price_version":null,'
    b'"usage":null,"plan":"basic","token_quota":1050,"token_used":12,"remaining":1038,'
    b'"plan_end_at":null,"token_held":0},{"version":5,"kind":"hold_placed",'
    b'"at":"2026-01-15T12:00:00Z","amount":5,"quota_delta":0,"used_delta":0,'
    b'"idempotency_key":null,"payment_id":null,"actor":"alice",'
    b'"message":"hold h-free placed: 5 until 2026-01-15T12:05:00+00:00","held_delta":5,'
    b'"hold_id":"h-free","overage":null,"draws":null,"lot_id":null,"credits":null,"price_version":null,'
    b'"usage":null,"plan":"basic","token_quota":1050,"token_used":12,"remaining":1033,'
    b'"plan_end_at":null,"token_held":5},{"version":4,"kind":"granted",'
    b'"at":"2026-01-15T12:00:00Z","amount":50,"quota_delta":50,"used_delta":0,'
    b'"idempotency_key":null,"payment_id":null,"actor":"root","message":"granted 50",'
    b'"held_delta":0,"hold_id":null,"overage":null,"draws":null,"lot_id":null,"credits":null,"price_version":null,'
    b'"usage":null,"plan":"basic","token_quota":1050,"token_used":12,"remaining":1038,'
    b'"plan_end_at":null,"token_held":0},{"version":3,"kind":"debited",'
    b'"at":"2026-01-15T12:00:00Z","amount":5,"quota_delta":0,"used_delta":5,'
    b'"idempotency_key":null,"payment_id":null,"actor":"alice",'
    b'"message":"debited 5 for gpt-x at prices unit","held_delta":0,"hold_id":null,'
    b'"overage":null,"draws":null,"lot_id":null,"credits":5,"price_version":"unit","usage":{"model":"gpt-x",'
    b'"input_tokens":3,"output_tokens":2,"cache_read_tokens":0,"cache_write_tokens":0,'
    b'"reasoning_tokens":0},"plan":"basic","token_quota":1000,"token_used":12,'
    b'"remaining":988,"plan_end_at":null,"token_held":0},{"version":2,"kind":"debited",'
    b'"at":"2026-01-15T12:00:00Z","amount":7,"quota_delta":0,"used_delta":7,'
    b'"idempotency_key":"k-1","payment_id":null,"actor":"alice","message":"debited 7",'
    b'"held_delta":0,"hold_id":null,"overage":null,"draws":null,"lot_id":null,"credits":null,"price_version":null,'
    b'"usage":null,"plan":"basic","token_quota":1000,"token_used":7,"remaining":993,'
    b'"plan_end_at":null,"token_held":0},{"version":1,"kind":"opened",'
    b'"at":"2026-01-15T12:00:00Z","amount":null,"quota_delta":1000,"used_delta":0,'
    b'"idempotency_key":null,"payment_id":null,"actor":null,'
    b'"message":"opened on basic","held_delta":0,"hold_id":null,"overage":null,'
    b'"draws":null,"lot_id":null,'
    b'"credits":null,"price_version":null,"usage":null,"plan":"basic",'
    b'"token_quota":1000,"token_used":0,"remaining":1000,"plan_end_at":null,'
    b'"token_held":0}],"next_cursor":null}'
)
