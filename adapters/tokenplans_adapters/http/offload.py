"""Running the synchronous store off the event loop, at the price of one executor hop.

Storage calls block, so no handler makes them on the event loop. Under asyncio (uvicorn
with its own loop or uvloop, and FastAPI or Starlette hosts) they go to one thread pool of
:data:`THREADS` threads through ``loop.run_in_executor``: about twice as cheap per call as
``anyio.to_thread.run_sync`` (Starlette's ``run_in_threadpool``), which also runs a capacity
limiter and a cancel scope per call. Under any other event loop anyio runs (trio), the call
goes to anyio's thread pool as before.

As with anyio, the caller's context variables reach the call, and a cancelled request waits
for its call to finish (a debit is never abandoned half-way) before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")

#: As many threads as anyio's default thread pool (the SQLite pool is sized to it).
THREADS = 40

_EXECUTOR = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="tokenplans-store")


async def in_thread(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in a worker thread, awaited without blocking the loop."""
    call = functools.partial(func, *args, **kwargs)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio through anyio)
        return await anyio.to_thread.run_sync(call)
    future = loop.run_in_executor(_EXECUTOR, contextvars.copy_context().run, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise
