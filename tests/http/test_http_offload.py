"""The hop from the event loop to a storage thread and back (``http/offload.in_thread``):
what a handler awaiting it can rely on."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from tokenplans_adapters.http.offload import in_thread

GUARD_S = 30  # only a hang waits this long

caller = contextvars.ContextVar[str]("caller", default="nobody")


def test_the_result_and_the_exception_come_back_from_the_worker_thread() -> None:
    async def scenario() -> tuple[str, str]:
        name = await in_thread(lambda: threading.current_thread().name)
        with pytest.raises(KeyError, match="missing"):
            await in_thread({}.__getitem__, "missing")
        return name, threading.current_thread().name

    worker, loop_thread = asyncio.run(scenario())

    assert worker.startswith("tokenplans-store")
    assert worker != loop_thread


def test_the_callers_context_variables_reach_the_call() -> None:
    async def scenario() -> str:
        caller.set("alice")
        return await in_thread(caller.get)

    assert asyncio.run(scenario()) == "alice"


def test_the_loop_runs_on_while_a_call_blocks() -> None:
    release = threading.Event()

    async def scenario() -> list[str]:
        events: list[str] = []
        call = asyncio.ensure_future(in_thread(release.wait, GUARD_S))
        for _ in range(3):
            await asyncio.sleep(0)
            events.append("loop")
        release.set()
        await asyncio.wait_for(call, GUARD_S)
        events.append("call")
        return events

    assert asyncio.run(scenario()) == ["loop", "loop", "loop", "call"]


def test_a_cancelled_caller_waits_for_its_call_to_end_before_the_cancellation_goes_on() -> None:
    started, release = threading.Event(), threading.Event()
    ended: list[str] = []

    def storage_call() -> None:
        started.set()
        release.wait(GUARD_S)
        ended.append("call ended")

    async def scenario() -> list[str]:
        task = asyncio.ensure_future(in_thread(storage_call))
        await asyncio.to_thread(started.wait, GUARD_S)
        task.cancel()
        await asyncio.sleep(0.05)
        task.cancel()  # cancelled again while waiting: still waits
        await asyncio.sleep(0.05)
        still_waiting = not task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, GUARD_S)
        return [*ended, f"waited: {still_waiting}"]

    assert asyncio.run(scenario()) == ["call ended", "waited: True"]
