"""A store whose calls wait at a gate the test holds shut: "the event loop stayed free while
N calls were inside the store" becomes a fact the test observes, never a stopwatch margin.

Shared by the HTTP, FastAPI and async-facade tests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

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
