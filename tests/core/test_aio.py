"""The async facade: every use case, run in a worker thread, adding up under concurrency."""

from __future__ import annotations

import asyncio
import inspect
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from gated_store import GatedStore, until
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenplans import (
    InsufficientTokensError,
    PaymentService,
    PlanCatalog,
    Principal,
    TokenService,
)
from tokenplans.aio import AsyncPaymentService, AsyncTokenService, in_executor
from tokenplans.testing import InMemoryStore, SettableClock

TASKS = 50


def _public_methods(cls: type) -> set[str]:
    return {
        name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")
    }


@pytest.mark.parametrize(
    ("facade", "service"),
    [(AsyncTokenService, TokenService), (AsyncPaymentService, PaymentService)],
)
def test_the_facade_has_every_use_case_of_its_service(facade: type, service: type) -> None:
    wrapped = {name for name in vars(facade) if not name.startswith("_")} - {"catalog", "pricer"}

    assert wrapped == _public_methods(service)
    for name in wrapped:
        member = vars(facade)[name]
        if hasattr(member, "method"):
            assert inspect.signature(getattr(service, name)) == inspect.signature(member.method)
        else:  # a context manager (holding): its own async twin, the same parameters
            assert inspect.signature(getattr(service, name)).parameters.keys() == (
                inspect.signature(member.__wrapped__).parameters.keys()
            )


async def _debits(service: AsyncTokenService, amounts: list[int]) -> list[int | None]:
    alice = Principal("alice")

    async def debit(amount: int) -> int | None:
        try:
            await service.consume(alice, amount)
        except InsufficientTokensError:
            return None
        return amount

    return list(await asyncio.gather(*(debit(amount) for amount in amounts)))


@settings(max_examples=25)  # 50 threaded debits each: enough to race, quick to run
@given(st.lists(st.integers(1, 60), min_size=TASKS, max_size=TASKS))  # ~1500 > 1000 a month
def test_fifty_concurrent_debits_add_up_exactly(amounts: list[int]) -> None:
    sync = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())

    results = asyncio.run(_debits(AsyncTokenService(sync), amounts))

    usage = sync.usage(Principal("alice"))
    debited = [amount for amount in results if amount is not None]
    assert sum(debited) == usage.token_used  # every success counted, nothing else
    assert usage.token_used <= usage.token_quota  # no overspend
    refused = [a for a, r in zip(amounts, results, strict=True) if r is None]
    assert all(amount > usage.remaining for amount in refused)  # refused only when short


async def _calls_waiting_at_once(make: type[AsyncTokenService], **options: object) -> int:
    store = GatedStore(threading.get_ident())
    service = make(TokenService(store, PlanCatalog.default(), SettableClock()), **options)
    calls = [asyncio.create_task(service.usage(Principal(f"u{n}"))) for n in range(4)]
    try:
        await until(lambda: store.waiting == len(calls) or all(c.done() for c in calls))
        waiting = store.waiting
    finally:
        store.gate.set()
    await asyncio.gather(*calls)
    return waiting


def test_calls_run_in_worker_threads_never_on_the_loop() -> None:
    # The gated store refuses a call on the loop's thread, and holds each one until the
    # test lets go: four inside at once means four threads, and a loop free to observe.
    assert asyncio.run(_calls_waiting_at_once(AsyncTokenService)) == 4


def test_an_injected_executor_runs_the_calls() -> None:
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="billing") as pool:
        assert asyncio.run(_calls_waiting_at_once(AsyncTokenService, runner=in_executor(pool))) == 4


def test_results_and_errors_are_the_services_own() -> None:
    sync = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())
    service = AsyncTokenService(sync)

    receipt = asyncio.run(service.consume(Principal("bob"), 10, idempotency_key="k"))
    with pytest.raises(InsufficientTokensError) as refused:
        asyncio.run(service.consume(Principal("bob"), 5000))

    assert receipt.amount == 10
    assert sync.consume(Principal("bob"), 10, idempotency_key="k").replayed
    assert (refused.value.remaining, refused.value.requested) == (990, 5000)
    assert service.catalog is sync.catalog


def test_async_holding_settles_inside_and_releases_on_an_exception() -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    from tokenplans import HoldStatus, PlanCatalog, Principal, TokenService  # noqa: PLC0415
    from tokenplans.aio import AsyncTokenService  # noqa: PLC0415
    from tokenplans.testing import InMemoryStore, SettableClock  # noqa: PLC0415

    clock = SettableClock(datetime(2026, 1, 15, tzinfo=UTC))
    service = AsyncTokenService(TokenService(InMemoryStore(), PlanCatalog.default(), clock))
    alice = Principal("alice")

    async def scenario() -> tuple[int, HoldStatus]:
        async with service.holding(alice, 300) as reservation:
            await reservation.settle(120)
        try:
            async with service.holding(alice, 300, hold_id="boom"):
                raise RuntimeError("model down")
        except RuntimeError:
            pass
        usage = await service.usage(alice)
        return usage.remaining, (await service.hold(alice, "boom")).status

    assert asyncio.run(scenario()) == (880, HoldStatus.RELEASED)
