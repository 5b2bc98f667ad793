"""A store whose calls wait at a gate the test holds shut: "the event loop stayed free while
N calls were inside the store" becomes a fact the test observes, never a stopwatch margin.

Shared by the HTTP, FastAPI and async-facade tests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import httpx

from tokenplans import Account
from tokenplans.testing import InMemoryStore

#: Only guards against a hang; a passing run never waits this long.
HANG_GUARD_SECONDS = 30.0


class GatedStore(InMemoryStore):
    """An in-memory store whose every ``load`` waits until the test opens the gate, like
    a congested database; it counts the calls waiting inside it."""

    def __init__(self, loop_thread: int) -> None:
        super().__init__()
        self.loop_thread = loop_thread
        self.gate = threading.Event()
        self.waiting = 0
        self._count = threading.Lock()

    def load(self, subject: str) -> Account | None:
        if threading.get_ident() == self.loop_thread:
            # Waiting here would freeze the loop, and with it the test that opens the gate.
            raise RuntimeError("the store was called on the event loop's thread")
        with self._count:
            self.waiting += 1
        try:
            self.gate.wait(HANG_GUARD_SECONDS)
        finally:
            with self._count:
                self.waiting -= 1
        return super().load(subject)


async def until(condition: Callable[[], bool]) -> None:
    """Wait (polling, without blocking the loop) until ``condition`` holds, or the guard."""
    deadline = asyncio.get_running_loop().time() + HANG_GUARD_SECONDS
    while not condition() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


@attrs.frozen
class Observed:
    """What :func:`free_call_while_gated` saw."""

    inside_at_once: int  # slow calls inside the store at once
    free_status: int  # the free call's status
    inside_after_free: int  # slow calls still inside the store when it answered
    slow_statuses: list[int]


async def free_call_while_gated(
    make_app: Callable[[GatedStore], Any],
    slow: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
    free: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
    *,
    in_flight: int,
) -> Observed:
    """Start ``in_flight`` ``slow(client, n)`` calls against the app ``make_app`` builds
    over a gated store, wait until all are inside the store, make the ``free`` call,
    then open the gate. Run it on the thread that calls ``asyncio.run``."""
    store = GatedStore(threading.get_ident())
    transport = httpx.ASGITransport(app=make_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        calls = [asyncio.create_task(slow(client, n)) for n in range(in_flight)]
        try:
            await until(lambda: store.waiting == in_flight or all(c.done() for c in calls))
            inside_at_once = store.waiting
            answer = await free(client)
            inside_after_free = store.waiting
        finally:
            store.gate.set()
        finished = await asyncio.gather(*calls)
    return Observed(
        inside_at_once, answer.status_code, inside_after_free, [r.status_code for r in finished]
    )
