"""The request commands: each use case takes its command as it is or its fields as
arguments, and both give the same result; a reserve option is declared once."""

from __future__ import annotations

import asyncio
import typing
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from tokenplans import (
    Consume,
    Grant,
    InvalidRequestError,
    PlanCatalog,
    Principal,
    Reserve,
    ReserveOptions,
    SetPlan,
    Settle,
    TokenService,
)
from tokenplans.aio import AsyncTokenService
from tokenplans.testing import InMemoryStore, SettableClock

ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))
ALICE = Principal("alice")
JAN_15 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def service() -> TokenService:
    return TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock(JAN_15))


def test_the_reserve_options_are_the_fields_of_reserve_after_what_and_which() -> None:
    names = [field.name for field in attrs.fields(Reserve)]

    assert names[:3] == ["amount", "estimate", "hold_id"]
    assert list(typing.get_type_hints(ReserveOptions)) == names[3:]


def test_a_reserve_command_holds_what_its_fields_as_arguments_hold(
    service: TokenService,
) -> None:
    by_fields = service.reserve(ALICE, 40, hold_id="a", ttl_seconds=60)
    by_command = service.reserve(ALICE, Reserve(40, hold_id="b", ttl_seconds=60))

    assert by_command.amount == by_fields.amount == 40
    assert by_command.expires_at == by_fields.expires_at == JAN_15 + timedelta(seconds=60)
    assert service.usage(ALICE).token_held == 80


def test_a_command_and_its_fields_together_are_refused_changing_nothing(
    service: TokenService,
) -> None:
    with pytest.raises(InvalidRequestError, match=r"pass a Reserve alone .*ttl_seconds"):
        service.reserve(ALICE, Reserve(40), ttl_seconds=60)
    with pytest.raises(InvalidRequestError, match=r"pass a Consume alone .*idempotency_key"):
        service.consume(ALICE, Consume(5), idempotency_key="k")
    with pytest.raises(InvalidRequestError, match=r"pass a SetPlan alone .*reset_used"):
        service.set_plan(ADMIN, SetPlan("basic"), subject="alice", reset_used=True)

    assert service.store.load("alice") is None


def test_every_use_case_takes_its_command(service: TokenService) -> None:
    service.grant(ADMIN, Grant(500), subject="alice")
    service.set_plan(ADMIN, SetPlan("standard", reset_used=True), subject="alice")
    receipt = service.consume(ALICE, Consume(7, idempotency_key="k"))
    hold = service.reserve(ALICE, Reserve(30, hold_id="h"))
    settled = service.settle(ALICE, hold.hold_id, Settle(20))

    assert receipt.amount == 7
    assert settled.settled == 20
    assert service.usage(ALICE).token_used == 27


def test_holding_and_its_async_form_forward_a_reserve(service: TokenService) -> None:
    with service.holding(ALICE, Reserve(30, hold_id="sync", ttl_seconds=90)) as reservation:
        assert reservation.hold.expires_at == JAN_15 + timedelta(seconds=90)
        reservation.settle(10)

    async def block() -> None:
        async with AsyncTokenService(service).holding(
            ALICE, 30, hold_id="async", ttl_seconds=120
        ) as reservation:
            assert reservation.hold.expires_at == JAN_15 + timedelta(seconds=120)
            await reservation.settle(5)

    asyncio.run(block())
    assert service.usage(ALICE).token_used == 15
