"""Storage never blocks the event loop: stalled database calls leave other requests free.

No stopwatch: the store's calls wait at a gate the test holds shut, so "health answered
while twenty usage calls were in flight" is a fact the test observes, not a margin a busy
machine can miss. Had the endpoint called the store on the event loop, the first call
would hold the loop and the others could never all be inside the store at once.
"""

from __future__ import annotations

import asyncio

from gated_store import free_call_while_gated
from http_support import ALICE, build_app

IN_FLIGHT = 20


def test_health_answers_while_twenty_slow_usage_calls_are_in_flight() -> None:
    seen = asyncio.run(
        free_call_while_gated(
            build_app,
            lambda client, _: client.get("/api/tokens/usage", headers=ALICE),
            lambda client: client.get("/api/health"),
            in_flight=IN_FLIGHT,
        )
    )

    assert seen.inside_at_once == IN_FLIGHT  # they run side by side, in the thread pool
    assert seen.free_status == 200
    assert seen.inside_after_free == IN_FLIGHT  # health did not wait for any of them
    assert seen.slow_statuses == [200] * IN_FLIGHT
