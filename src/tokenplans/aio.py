"""The services for async code: each call runs in a worker thread, never on the event loop.

:class:`TokenService` and :class:`PaymentService` are synchronous, because their stores
are (a SQL round trip, a payment provider's HTTP call). Awaited from ``async def`` they
would stall every other request on the loop for as long as the database takes.
:class:`AsyncTokenService` and :class:`AsyncPaymentService` have the same methods, with
the same parameters and results, as coroutines that run the synchronous call in a thread::

    service = AsyncTokenService(TokenService(store, catalog, clock))
    receipt = await service.consume(principal, 300, idempotency_key="chat-42")

The thread comes from ``asyncio.to_thread`` (the loop's default executor) unless you pass
``runner=in_executor(pool)`` to bound them with your own pool, or any other
:class:`ThreadRunner` (Starlette's ``run_in_threadpool`` is one, and shares its limiter
with the host's own sync endpoints). Standard library only, so any async framework can
use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, Unpack

from tokenplans._pricing.quotes import Pricer
from tokenplans._services.holds import reserve_command
from tokenplans._services.parts import whose
from tokenplans._services.payments import PaymentService
from tokenplans._services.reservations import OnReplay, ReservationState, admit, check_on_replay
from tokenplans._services.tokens import TokenService
from tokenplans._values.commands import Reserve, ReserveOptions
from tokenplans._values.holds import Hold
from tokenplans._values.model_usage import Estimate, ModelUsage
from tokenplans._values.plans import PlanCatalog
from tokenplans._values.principal import Principal
from tokenplans.errors import AlreadyProcessedError, TokenplansError

__all__ = [
    "AsyncPaymentService",
    "AsyncReservation",
    "AsyncTokenService",
    "OnReplay",
    "ThreadRunner",
    "check_on_replay",
    "in_executor",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Service = TypeVar("Service")


class ThreadRunner(Protocol):
    """Runs a blocking call off the event loop and awaits its result."""

    def __call__(self, func: Callable[[], T], /) -> Awaitable[T]: ...


def _to_thread(func: Callable[[], T], /) -> Awaitable[T]:
    return asyncio.to_thread(func)


def in_executor(executor: Executor) -> ThreadRunner:
    """A runner that uses ``executor`` (its size bounds how many calls run at once), with
    the caller's context variables, as ``asyncio.to_thread`` keeps them."""

    def run(func: Callable[[], T], /) -> Awaitable[T]:
        context = contextvars.copy_context()
        return asyncio.get_running_loop().run_in_executor(executor, context.run, func)

    return run


class _Facade(Generic[Service]):
    """What every facade holds: the synchronous service and how to reach a thread."""

    def __init__(self, service: Service, *, runner: ThreadRunner | None = None) -> None:
        self.sync = service
        self._run: ThreadRunner = _to_thread if runner is None else runner


class _InThread(Generic[P, R]):
    """A facade attribute that is the service's ``method`` as a coroutine run in a thread.

    The signature comes from the method itself (``P`` and ``R``), so a parameter added to
    the service needs no change here and type checkers see the real one.
    """

    def __init__(self, method: Callable[Concatenate[Any, P], R]) -> None:
        self.method = method
        functools.update_wrapper(self, method)  # type: ignore[arg-type]  # a descriptor

    def __get__(
        self, facade: _Facade[Any], owner: type | None = None
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        method = self.method

        @functools.wraps(method)
        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return await facade._run(functools.partial(method, facade.sync, *args, **kwargs))

        return call


class AsyncTokenService(_Facade[TokenService]):
    """:class:`~tokenplans.TokenService`'s use cases as coroutines (``sync`` is the
    wrapped service). ``catalog`` and ``pricer`` are in memory: use them directly."""

    account = _InThread(TokenService.account)
    usage = _InThread(TokenService.usage)
    check = _InThread(TokenService.check)
    history = _InThread(TokenService.history)
    events = _InThread(TokenService.events)
    set_plan = _InThread(TokenService.set_plan)
    consume = _InThread(TokenService.consume)
    grant = _InThread(TokenService.grant)
    void_lot = _InThread(TokenService.void_lot)
    lots = _InThread(TokenService.lots)
    reserve = _InThread(TokenService.reserve)
    settle = _InThread(TokenService.settle)
    release = _InThread(TokenService.release)
    holds = _InThread(TokenService.holds)
    hold = _InThread(TokenService.hold)
    sweep_expired_holds = _InThread(TokenService.sweep_expired_holds)
    usage_report = _InThread(TokenService.usage_report)
    usage_report_all = _InThread(TokenService.usage_report_all)
    top_spenders = _InThread(TokenService.top_spenders)
    list_accounts = _InThread(TokenService.list_accounts)

    @property
    def catalog(self) -> PlanCatalog:
        return self.sync.catalog

    @property
    def pricer(self) -> Pricer:
        """The wrapped service's pricer (immutable: quote from it directly)."""
        return self.sync.pricer

    @contextlib.asynccontextmanager
    async def holding(
        self,
        principal: Principal,
        amount: int | Reserve | None = None,
        *,
        estimate: Estimate | None = None,
        hold_id: str | None = None,
        subject: str | None = None,
        on_replay: OnReplay = "refuse",
        **options: Unpack[ReserveOptions],
    ) -> AsyncIterator[AsyncReservation]:
        """:meth:`TokenService.holding` as ``async with``: settle inside the block
        (``await reservation.settle(n)`` or ``settle(usage=...)``) or ``report`` as a
        stream goes; leaving it settles the last report, else releases. A duplicate
        ``hold_id`` is refused before the block runs unless ``on_replay="call"``, and
        never closes the first request's hold."""
        command = reserve_command(amount, estimate, hold_id, options)
        subject = whose(principal, subject)
        policy = check_on_replay(on_replay)
        try:
            hold = await self.reserve(principal, command, subject=subject)
        except AlreadyProcessedError as done:
            state = admit(_raising(done), policy, self.sync.clock.now)
        else:
            state = admit(lambda: hold, policy, self.sync.clock.now)
        reservation = AsyncReservation(self, principal, subject, state)
        try:
            yield reservation
        except BaseException:
            # The block's own error matters more; an unclosed hold still expires.
            with contextlib.suppress(TokenplansError):
                await reservation.close()
            raise
        await reservation.close()


def _raising(error: Exception) -> Callable[[], Hold]:
    def reserve() -> Hold:
        raise error

    return reserve


class AsyncReservation:
    """The hold of an :meth:`AsyncTokenService.holding` block: settle it, ``report``
    what a stream used so far, or release it; ``replayed`` says it is another
    request's hold, to leave alone."""

    def __init__(
        self,
        service: AsyncTokenService,
        principal: Principal,
        subject: str,
        state: ReservationState,
    ) -> None:
        self._service = service
        self._principal = principal
        self._subject = subject
        self._state = state

    @property
    def hold(self) -> Hold:
        return self._state.hold

    @property
    def hold_id(self) -> str:
        return self.hold.hold_id

    @property
    def replayed(self) -> bool:
        return self._state.replayed

    async def settle(self, amount: int | None = None, *, usage: ModelUsage | None = None) -> Hold:
        """Settle with the tokens actually used, or the call's ``usage`` to price; the
        block then leaves the hold alone."""
        self._state.hold = await self._service.settle(
            self._principal, self.hold_id, amount, usage=usage, subject=self._subject
        )
        return self.hold

    def report(self, amount: int | None = None, *, usage: ModelUsage | None = None) -> None:
        """What the call has used so far, cumulative (each report replaces the last):
        settled when the block ends without a settle, however it ends. Writes nothing,
        so it is a plain call, cheap enough for every chunk of a stream."""
        self._state.report(amount, usage)

    async def release(self) -> Hold:
        """Release now, with nothing used."""
        self._state.hold = await self._service.release(
            self._principal, self.hold_id, subject=self._subject
        )
        return self.hold

    async def close(self) -> None:
        """What leaving the block does: settle the last report, or release; nothing for
        a hold already closed or placed by another request."""
        closing = self._state.closing()
        if closing is None:
            return
        amount, usage = closing
        if amount is None and usage is None:
            await self.release()
        else:
            await self.settle(amount, usage=usage)


class AsyncPaymentService(_Facade[PaymentService]):
    """:class:`~tokenplans.PaymentService`'s use cases as coroutines (a gateway call is
    network I/O too)."""

    create_order = _InThread(PaymentService.create_order)
    payments = _InThread(PaymentService.payments)
    confirm = _InThread(PaymentService.confirm)
    handle_webhook = _InThread(PaymentService.handle_webhook)
