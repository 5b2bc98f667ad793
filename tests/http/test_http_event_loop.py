"""Storage never blocks the event loop: slow database calls leave other requests free."""

from __future__ import annotations

import asyncio
import time

import httpx
from http_support import ALICE, build_app

from tokenplans import Account
from tokenplans.testing import InMemoryStore

SLOW_LOAD_SECONDS = 0.3


class SlowStore(InMemoryStore):
    """An in-memory store whose every ``load`` takes 300 ms, like a congested database."""

    def load(self, subject: str) -> Account | None:
        time.sleep(SLOW_LOAD_SECONDS)
        return super().load(subject)


async def _race() -> tuple[float, list[float], list[int]]:
    app = build_app(SlowStore())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        started = time.perf_counter()

        async def timed(path: str, headers: dict[str, str]) -> tuple[float, int]:
            response = await client.get(path, headers=headers)
            return time.perf_counter() - started, response.status_code

        slow = [asyncio.create_task(timed("/api/tokens/usage", ALICE)) for _ in range(20)]
        await asyncio.sleep(0.02)  # the usage calls are now inside the store
        health_at, health_status = await timed("/api/health", {})
        finished = await asyncio.gather(*slow)
    return health_at, [at for at, _ in finished], [health_status, *(s for _, s in finished)]


def test_health_answers_while_twenty_slow_usage_calls_are_in_flight() -> None:
    health_at, slow_done_at, statuses = asyncio.run(_race())

    assert set(statuses) == {200}
    assert health_at < 0.15
    assert min(slow_done_at) >= SLOW_LOAD_SECONDS
    assert health_at < min(slow_done_at) / 2
    assert max(slow_done_at) < 20 * SLOW_LOAD_SECONDS / 2  # and they ran side by side
