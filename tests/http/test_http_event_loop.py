"""Storage never blocks the event loop: stalled database calls leave other requests free.

No stopwatch: the store's calls wait at a gate the test holds shut, so "health answered
while twenty usage calls were in flight" is a fact the test observes, not a margin a busy
machine can miss. Had the endpoint called the store on the event loop, the first call
would hold the loop and the others could never all be inside the store at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import httpx
from http_support import ALICE, build_app

from tokenplans import Account
from tokenplans.testing import InMemoryStore

IN_FLIGHT = 20
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


async def _until(condition: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + HANG_GUARD_SECONDS
    while not condition() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


async def _health_while_usage_calls_wait() -> tuple[int, int, int, list[int]]:
    """(calls inside the store at once, health's status, calls still inside the store
    when health answered, the usage calls' statuses)."""
    store = GatedStore(threading.get_ident())
    transport = httpx.ASGITransport(app=build_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        slow = [
            asyncio.create_task(client.get("/api/tokens/usage", headers=ALICE))
            for _ in range(IN_FLIGHT)
        ]
        try:
            await _until(lambda: store.waiting == IN_FLIGHT or all(t.done() for t in slow))
            inside_at_once = store.waiting
            health = await client.get("/api/health")
            inside_after_health = store.waiting
        finally:
            store.gate.set()
        finished = await asyncio.gather(*slow)
    return (
        inside_at_once,
        health.status_code,
        inside_after_health,
        [r.status_code for r in finished],
    )


def test_health_answers_while_twenty_slow_usage_calls_are_in_flight() -> None:
    inside_at_once, health, inside_after_health, statuses = asyncio.run(
        _health_while_usage_calls_wait()
    )

    assert inside_at_once == IN_FLIGHT  # they run side by side, in the thread pool
    assert health == 200
    assert inside_after_health == IN_FLIGHT  # health did not wait for any of them
    assert statuses == [200] * IN_FLIGHT
