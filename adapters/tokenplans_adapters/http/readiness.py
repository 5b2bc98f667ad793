"""Readiness with a deadline of its own: a probe answers within it, whatever the database
does.

A load balancer polls readiness to learn whether to send traffic, so its answer must come
quickly even when the database hangs (a silent partition, a frozen server): the check
runs on a thread of its own and the probe waits for it at most ``timeout_seconds``, then
reports the database unavailable (a 503). The check goes on until the database call's
own deadline ends it; meanwhile each later probe waits on that same check rather than
starting another, so polling during an outage never piles up threads or connections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from tokenplans import StorageUnavailableError

#: Seconds a readiness probe waits for the database's answer.
DEFAULT_READINESS_TIMEOUT_SECONDS = 2


class DeadlineProbe:
    """``check()`` (``None``: ready; else why not) run at most once at a time, each call
    waiting for it at most ``timeout_seconds`` before raising
    :class:`~tokenplans.StorageUnavailableError`."""

    def __init__(
        self,
        check: Callable[[], str | None],
        timeout_seconds: float = DEFAULT_READINESS_TIMEOUT_SECONDS,
    ) -> None:
        if not timeout_seconds > 0:
            raise ValueError(f"readiness timeout must be > 0, got {timeout_seconds}")
        self.check = check
        self.timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._running: Future[str | None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def __call__(self) -> str | None:
        with self._lock:
            if self._running is None or self._running.done():
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(1, "tokenplans-readiness")
                self._running = self._executor.submit(self.check)
            running = self._running
        try:
            return running.result(timeout=self.timeout_seconds)
        except TimeoutError:
            raise StorageUnavailableError(
                f"the database did not answer the readiness check within {self.timeout_seconds:g} s"
            ) from None
