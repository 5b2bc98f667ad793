"""Storage never blocks the event loop: stalled database calls leave other requests free.

No stopwatch: the store's calls wait at a gate the test holds shut, so "health answered
while twenty usage calls were in flight" is a fact the test observes, not a margin a busy
machine can miss. Had the endpoint called the store on the event loop, the first call
would hold the loop and the others could never all be inside the store at once.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
from gated_store import GatedStore, until
from http_support import ALICE, build_app

IN_FLIGHT = 20


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
            await until(lambda: store.waiting == IN_FLIGHT or all(t.done() for t in slow))
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
