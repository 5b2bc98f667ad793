"""Running the synchronous store off the event loop, at the price of one executor hop.

Storage calls block, so no handler makes them on the event loop. Under asyncio (uvicorn
with its own loop or uvloop, and FastAPI or Starlette hosts) they go to one thread pool of
:data:`THREADS` threads, and the worker hands the outcome back with one
``call_soon_threadsafe``: no ``concurrent.futures`` future is wrapped and chained into an
asyncio one, and no shield is built per call (``loop.run_in_executor`` does the first,
``anyio.to_thread.run_sync``, Starlette's ``run_in_threadpool``, also runs a capacity
limiter and a cancel scope per call). Under any other event loop anyio runs (trio), the
call goes to anyio's thread pool.

As with anyio, the caller's context variables reach the call, and a cancelled request waits
for its call to finish (a debit is never abandoned half-way) before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")

#: The threads by default: as many as anyio's default thread pool (and as a SQLite
#: engine's default pool has connections). :func:`use_threads` changes it.
THREADS = 40

_EXECUTOR = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="tokenplans-store")
_threads = THREADS


def use_threads(threads: int) -> None:
    """Run storage calls on ``threads`` threads from now on: the process's one pool, which
    every app in the process shares. ``tokenplans serve`` sizes it to the database's
    connection pool, so no storage thread waits for a connection and none is opened per
    request. Calls already running finish on the old threads."""
    global _EXECUTOR, _threads  # noqa: PLW0603 - the process's one pool
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if threads == _threads:
        return
    old = _EXECUTOR
    _EXECUTOR = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tokenplans-store")
    _threads = threads
    old.shutdown(wait=False)


def threads() -> int:
    """How many threads storage calls run on."""
    return _threads


async def in_thread(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in a worker thread, awaited without blocking the loop."""
    call = functools.partial(func, *args, **kwargs)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio through anyio)
        return await anyio.to_thread.run_sync(call)
    hop = _Hop[T](loop)
    _EXECUTOR.submit(hop.run, contextvars.copy_context(), call)
    return await hop.outcome()


class _Hop(Generic[T]):
    """One call's way to a worker thread and back to the loop."""

    __slots__ = ("_done", "_finished", "_future", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: asyncio.Future[T] = loop.create_future()
        self._done = False
        # Made only when the caller is cancelled: what it waits on for the call to end.
        self._finished: asyncio.Future[None] | None = None

    def run(self, context: contextvars.Context, call: Callable[[], T]) -> None:
        """In the worker thread: the call, then its outcome handed to the loop."""
        try:
            result = context.run(call)
        except BaseException as error:  # handed to the awaiting caller, whatever it is
            self._loop.call_soon_threadsafe(self._deliver, None, error)
        else:
            self._loop.call_soon_threadsafe(self._deliver, result, None)

    def _deliver(self, result: Any, error: BaseException | None) -> None:
        """On the loop: the outcome to the caller, unless it was cancelled meanwhile."""
        self._done = True
        if not self._future.done():
            if error is None:
                self._future.set_result(result)
            else:
                self._future.set_exception(error)
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(None)

    async def outcome(self) -> T:
        try:
            return await self._future
        except asyncio.CancelledError:
            # Cancelled while the call runs: wait for it to end (cancelled again or not),
            # then let the cancellation go on.
            while not self._done:
                if self._finished is None:
                    self._finished = self._loop.create_future()
                try:
                    await asyncio.shield(self._finished)
                except asyncio.CancelledError:
                    continue
            raise
