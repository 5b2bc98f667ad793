"""Priced ledger entries on every store: the model call a debit, hold or settle was priced
from comes back exactly as recorded, beside entries that were not priced."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from storage_support import MID_JANUARY, new_subject, service_over, whole_ledger

from tokenplans import (
    MAX_MODEL_LENGTH,
    MAX_PRICE_VERSION_LENGTH,
    MAX_TOKENS,
    AccountStore,
    EntryKind,
    Estimate,
    ModelUsage,
    PriceBook,
    PricedCall,
    Principal,
    fold,
)
from tokenplans._rules.quota import debit, open_account
from tokenplans.ports import Commit
from tokenplans_adapters.sql import SqlAccountStore
from tokenplans_adapters.sql.schema import ledger_entries

EXAMPLE_BOOK = Path(__file__).parents[2] / "docs" / "examples" / "prices.toml"
CALL = ModelUsage(
    "claude-sonnet-4-5",
    input_tokens=1200,
    output_tokens=300,
    cache_read_tokens=5000,
    cache_write_tokens=800,
    reasoning_tokens=150,
)


def test_priced_debits_holds_and_settles_record_their_call_on_every_store(
    store: AccountStore,
) -> None:
    subject = new_subject()
    alice = Principal(subject)
    service = service_over(store, pricer=PriceBook.from_file(EXAMPLE_BOOK))

    service.consume(alice, 3)
    receipt = service.consume(alice, usage=CALL, idempotency_key="call-1")
    service.reserve(alice, estimate=Estimate("o3", 1000, 4096), hold_id="h-1")
    service.settle(alice, "h-1", usage=ModelUsage("o3", 1000, 100, reasoning_tokens=900))

    entries = whole_ledger(store, subject)
    assert [(e.kind, e.priced is not None) for e in entries] == [
        (EntryKind.OPENED, False),
        (EntryKind.DEBITED, False),
        (EntryKind.DEBITED, True),
        (EntryKind.HOLD_PLACED, True),
        (EntryKind.HOLD_SETTLED, True),
    ]
    # 1200 x 3000 + 300 x 15000 + 5000 x 300 + 800 x 3750 + 150 x 15000 = 14.85 M: 15.
    assert entries[2].priced == PricedCall(CALL, credits=15, price_version="2026-12-01")
    assert entries[2].amount == 15
    assert entries[3].priced == PricedCall(
        ModelUsage("o3", 1000, 4096), credits=35, price_version="2026-12-01"
    )
    assert entries[4].priced == PricedCall(
        ModelUsage("o3", 1000, 100, reasoning_tokens=900), credits=10, price_version="2026-12-01"
    )
    assert fold(entries) == store.load(subject)
    replayed = store.find_receipt(subject, subject, "call-1")
    assert replayed is not None
    assert replayed.priced == receipt.priced


def test_the_largest_counts_and_longest_names_are_stored_exactly(store: AccountStore) -> None:
    subject = new_subject()
    opened = open_account(subject, service_over(store).catalog, MID_JANUARY)
    store.commit(Commit(opened.account, 0, opened.entries))
    priced = PricedCall(
        ModelUsage("m" * MAX_MODEL_LENGTH, *([MAX_TOKENS] * 5)),
        credits=7,
        price_version="v" * MAX_PRICE_VERSION_LENGTH,
    )
    change = debit(opened.account, 7, MID_JANUARY, priced=priced)
    store.commit(Commit(change.account, opened.account.version, change.entries))

    assert whole_ledger(store, subject)[-1].priced == priced


def test_a_priced_entrys_columns_hold_the_call_in_plain_sql(sql_store: SqlAccountStore) -> None:
    subject = new_subject()
    service = service_over(sql_store, pricer=PriceBook.from_file(EXAMPLE_BOOK))
    service.consume(Principal(subject), usage=CALL)
    service.consume(Principal(subject), 4)

    query = (
        select(
            ledger_entries.c.kind,
            ledger_entries.c.amount,
            ledger_entries.c.model,
            ledger_entries.c.input_tokens,
            ledger_entries.c.cache_write_tokens,
            ledger_entries.c.credits,
            ledger_entries.c.price_version,
        )
        .where(ledger_entries.c.subject == subject)
        .order_by(ledger_entries.c.version)
    )
    with sql_store.engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(query)]

    assert rows[1:] == [
        ("debited", 15, "claude-sonnet-4-5", 1200, 800, 15, "2026-12-01"),
        ("debited", 4, None, None, None, None, None),
    ]


@pytest.mark.parametrize("model", ["gpt-4o", "accounts/fireworks/models/llama-v3p1-405b"])
def test_model_names_come_back_as_they_were_priced(store: AccountStore, model: str) -> None:
    subject = new_subject()
    service = service_over(store)

    service.consume(Principal(subject), usage=ModelUsage(model, 1, 1))

    priced = whole_ledger(store, subject)[-1].priced
    assert priced is not None
    assert priced.usage.model == model
