"""Consume, reserve and settle priced from a model call: credits from the service's pricer,
the call recorded on the ledger entry, and nothing charged for a call it cannot price."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from strategies import calls_within_estimates, model_usages, price_book_mappings

from tokenplans import (
    MAX_AMOUNT,
    EntryKind,
    Estimate,
    HoldConflictError,
    IdempotencyConflictError,
    InvalidRequestError,
    LedgerEntry,
    ModelUsage,
    PlanCatalog,
    PriceBook,
    PricedCall,
    Principal,
    TokenService,
    UnknownModelError,
    fold,
)
from tokenplans.aio import AsyncTokenService
from tokenplans.testing import InMemoryStore, SettableClock

EXAMPLE_BOOK = Path(__file__).parents[2] / "docs" / "examples" / "prices.toml"
ALICE = Principal("alice")
#: 600 x 2500 + 300 x 10000 + 400 x 1250 = 5,000,000 per million: five credits.
GPT_4O_CALL = ModelUsage("gpt-4o", 600, 300, cache_read_tokens=400)


def service_with(pricer: PriceBook | None = None) -> TokenService:
    clock = SettableClock(datetime(2026, 1, 15, tzinfo=UTC))
    return TokenService(InMemoryStore(), PlanCatalog.default(), clock, pricer=pricer)


def booked() -> TokenService:
    return service_with(PriceBook.from_file(EXAMPLE_BOOK))


def newest(service: TokenService) -> LedgerEntry:
    return service.history(ALICE, limit=1).entries[0]


def test_without_a_price_book_a_usage_costs_one_credit_per_counted_token() -> None:
    service = service_with()
    service.grant(Principal("ops", {"tokenplans:admin"}), 1000, subject="alice")

    receipt = service.consume(ALICE, usage=GPT_4O_CALL)

    assert receipt.amount == 1300
    assert receipt.priced == PricedCall(GPT_4O_CALL, credits=1300, price_version="unit")
    assert newest(service).priced == receipt.priced


def test_a_priced_debit_charges_the_books_credits_and_records_the_call() -> None:
    service = booked()

    receipt = service.consume(ALICE, usage=GPT_4O_CALL, idempotency_key="chat-1")

    assert (receipt.amount, receipt.usage.token_used) == (5, 5)
    entry = newest(service)
    assert entry.kind is EntryKind.DEBITED
    assert entry.amount == 5
    assert entry.priced == PricedCall(GPT_4O_CALL, credits=5, price_version="2026-12-01")
    assert "gpt-4o" in entry.message


def test_a_retried_priced_debit_replays_the_first_receipt_with_its_call() -> None:
    service = booked()
    first = service.consume(ALICE, usage=GPT_4O_CALL, idempotency_key="chat-1")

    again = service.consume(ALICE, usage=GPT_4O_CALL, idempotency_key="chat-1")

    assert again.replayed
    assert again.priced == first.priced
    assert service.usage(ALICE).token_used == 5


def test_an_unknown_model_without_default_is_refused_and_nothing_is_charged() -> None:
    book = PriceBook.from_mapping({"version": "v1", "models": {"o3": {"input": 1, "output": 2}}})
    service = service_with(book)
    service.consume(ALICE, 10)

    with pytest.raises(UnknownModelError) as refused:
        service.consume(ALICE, usage=ModelUsage("mystery-1", 10, 10))
    with pytest.raises(UnknownModelError):
        service.reserve(ALICE, estimate=Estimate("mystery-1", 10, 10))

    assert refused.value.model == "mystery-1"
    assert service.usage(ALICE).token_used == 10
    assert service.usage(ALICE).token_held == 0
    assert newest(service).kind is EntryKind.DEBITED
    assert newest(service).version == 2  # opened, debited: nothing since


@pytest.mark.parametrize(
    "call",
    [
        lambda service: service.consume(ALICE),
        lambda service: service.consume(ALICE, 5, usage=GPT_4O_CALL),
        lambda service: service.reserve(ALICE),
        lambda service: service.reserve(ALICE, 5, estimate=Estimate("gpt-4o", 1, 1)),
        lambda service: service.settle(ALICE, "h"),
        lambda service: service.settle(ALICE, "h", 5, usage=GPT_4O_CALL),
    ],
)
def test_a_request_takes_an_amount_or_a_call_exactly_one(call: object) -> None:
    service = booked()

    with pytest.raises(InvalidRequestError, match="exactly one"):
        call(service)  # type: ignore[operator]

    assert service.usage(ALICE).token_used == 0


def test_a_usage_that_is_not_a_model_usage_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="ModelUsage"):
        booked().consume(ALICE, usage={"model": "gpt-4o"})  # type: ignore[arg-type]


def test_a_call_costing_more_than_one_request_may_charge_is_refused() -> None:
    dear = PriceBook.from_mapping(
        {"version": "v1", "models": {"*": {"input": 10**12, "output": 10**12}}}
    )
    service = service_with(dear)

    with pytest.raises(InvalidRequestError, match=str(MAX_AMOUNT)):
        service.consume(ALICE, usage=ModelUsage("big", 10**7, 0))


def test_a_hold_is_reserved_from_an_estimate_and_settled_from_the_actual_usage() -> None:
    service = booked()
    estimate = Estimate("gpt-4o", input_tokens=1000, max_output_tokens=4096)

    hold = service.reserve(ALICE, estimate=estimate, hold_id="chat-9")
    placed = newest(service)
    settled = service.settle(ALICE, "chat-9", usage=GPT_4O_CALL)

    # 1000 x 2500 + 4096 x 10000 = 43,460,000 per million: 44 credits held (rounded up).
    assert hold.amount == 44
    assert placed.kind is EntryKind.HOLD_PLACED
    assert placed.priced == PricedCall(
        ModelUsage("gpt-4o", 1000, 4096), credits=44, price_version="2026-12-01"
    )
    assert (settled.settled, settled.overage) == (5, 0)
    entry = newest(service)
    assert entry.kind is EntryKind.HOLD_SETTLED
    assert entry.priced == PricedCall(GPT_4O_CALL, credits=5, price_version="2026-12-01")
    usage = service.usage(ALICE)
    assert (usage.token_used, usage.token_held) == (5, 0)


def test_the_holding_block_takes_an_estimate_and_settles_from_usage() -> None:
    service = booked()

    with service.holding(ALICE, estimate=Estimate("o3", 1000, 4096)) as reservation:
        assert reservation.hold.amount == 35
        reservation.settle(usage=ModelUsage("o3", 1000, 800, reasoning_tokens=1200))

    # 1000 x 2000 + 2000 x 8000 = 18,000,000 per million: 18 credits.
    assert service.usage(ALICE).token_used == 18


def test_the_async_facade_prices_the_same_way() -> None:
    service = AsyncTokenService(booked())

    async def scenario() -> tuple[int, int]:
        receipt = await service.consume(ALICE, usage=GPT_4O_CALL)
        async with service.holding(ALICE, estimate=Estimate("gpt-4o", 1000, 4096)) as held:
            await held.settle(usage=GPT_4O_CALL)
        return receipt.amount, (await service.usage(ALICE)).token_used

    assert asyncio.run(scenario()) == (5, 10)
    assert service.pricer.describe()["version"] == "2026-12-01"


def test_priced_entries_fold_to_the_snapshot_like_any_other() -> None:
    service = booked()
    service.consume(ALICE, usage=GPT_4O_CALL)
    service.reserve(ALICE, estimate=Estimate("o3", 10, 10), hold_id="h")
    service.settle(ALICE, "h", usage=ModelUsage("o3", 10, 10))

    entries = service.history(ALICE, limit=200).entries[::-1]

    assert fold(entries) == service.account("alice")


ADMIN = Principal("ops", {"tokenplans:admin"})


@given(mapping=price_book_mappings(), usage=model_usages())
def test_a_priced_consume_charges_exactly_the_quote_or_nothing(
    mapping: dict[str, Any], usage: ModelUsage
) -> None:
    book = PriceBook.from_mapping(mapping)
    quote = book.price(usage)
    service = service_with(book)
    service.grant(ADMIN, MAX_AMOUNT, subject="alice")

    if not 1 <= quote.credits <= MAX_AMOUNT:  # a debit costs at least one credit
        with pytest.raises(InvalidRequestError):
            service.consume(ALICE, usage=usage)
        assert service.usage(ALICE).token_used == 0
        assert newest(service).kind is EntryKind.GRANTED
        return
    receipt = service.consume(ALICE, usage=usage)

    assert service.usage(ALICE).token_used == receipt.amount == quote.credits
    assert newest(service).priced == PricedCall(usage, quote.credits, "test")


@given(mapping=price_book_mappings(), call=calls_within_estimates("gpt-4o"))
def test_reserving_an_estimate_then_settling_the_usage_ends_where_consuming_it_ends(
    mapping: dict[str, Any], call: tuple[int, int, ModelUsage]
) -> None:
    input_tokens, max_output_tokens, usage = call
    book = PriceBook.from_mapping(mapping)
    assume(1 <= book.estimate("gpt-4o", input_tokens, max_output_tokens).credits <= MAX_AMOUNT // 2)
    held, consumed = service_with(book), service_with(book)
    for service in (held, consumed):
        service.grant(ADMIN, MAX_AMOUNT, subject="alice")

    hold = held.reserve(ALICE, estimate=Estimate("gpt-4o", input_tokens, max_output_tokens))
    held.settle(ALICE, hold.hold_id, usage=usage)  # a settle may cost 0: it closes the hold
    if book.price(usage).credits:
        consumed.consume(ALICE, usage=usage)
    else:  # a debit may not
        with pytest.raises(InvalidRequestError, match="costs 0 credits"):
            consumed.consume(ALICE, usage=usage)

    after_hold, after_consume = held.usage(ALICE), consumed.usage(ALICE)
    assert hold.amount >= after_hold.token_used  # the estimate covered the call
    assert (after_hold.token_used, after_hold.token_held) == (after_consume.token_used, 0)
    assert held.hold(ALICE, hold.hold_id).overage == 0


def test_an_estimate_that_is_not_an_estimate_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="Estimate"):
        booked().reserve(ALICE, estimate=("o3", 1, 1))  # type: ignore[arg-type]


@pytest.mark.parametrize("version", ["", "v" * 65, "line\nbreak", 7])
def test_a_priced_call_needs_a_printable_price_version(version: object) -> None:
    with pytest.raises(InvalidRequestError, match="price_version"):
        PricedCall(GPT_4O_CALL, credits=5, price_version=version)  # type: ignore[arg-type]


# -- a repeat is the same request only when the whole request matches ---------------------

#: Two different calls of the same cost at one credit a token: 150 credits each.
CALL_A = ModelUsage("gpt-4o", 100, 50)
CALL_B = ModelUsage("gpt-4o", 50, 100)


def test_a_key_reused_for_another_call_of_the_same_cost_is_a_conflict() -> None:
    service = service_with()
    first = service.consume(ALICE, usage=CALL_A, idempotency_key="chat-51e2")

    with pytest.raises(IdempotencyConflictError, match="another model call"):
        service.consume(ALICE, usage=CALL_B, idempotency_key="chat-51e2")
    with pytest.raises(IdempotencyConflictError):
        service.consume(ALICE, 150, idempotency_key="chat-51e2")  # the amount alone
    again = service.consume(ALICE, usage=CALL_A, idempotency_key="chat-51e2")

    assert again.replayed
    assert again.amount == first.amount == 150
    assert service.usage(ALICE).token_used == 150


def test_a_hold_id_reused_for_another_estimate_of_the_same_cost_is_a_conflict() -> None:
    service = service_with()
    first = service.reserve(ALICE, estimate=Estimate("gpt-4o", 100, 50), hold_id="call-7d")

    with pytest.raises(HoldConflictError, match="another request"):
        service.reserve(ALICE, estimate=Estimate("gpt-4o", 50, 100), hold_id="call-7d")
    with pytest.raises(HoldConflictError):
        service.reserve(ALICE, 150, hold_id="call-7d")
    again = service.reserve(ALICE, estimate=Estimate("gpt-4o", 100, 50), hold_id="call-7d")

    assert (again.replayed, again.amount) == (True, first.amount)
    assert service.usage(ALICE).token_held == 150
