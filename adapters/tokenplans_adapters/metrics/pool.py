"""The database pool's checkout wait, timed around SQLAlchemy's ``Pool.connect``.

SQLAlchemy's pool events fire once a connection is in hand (``checkout``), so the time
spent waiting for one is measured around the pool's own entry point instead: the time
to get a connection, whether it waited for a free one or opened a new one. A pool
timeout (no connection within the pool's ``timeout``) is counted too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .registry import Metrics

if TYPE_CHECKING:  # the metrics extra alone has no SQLAlchemy: only a SQL store's engine
    from sqlalchemy import Engine

__all__ = ["time_pool_checkouts"]


def time_pool_checkouts(engine: Engine, metrics: Metrics) -> None:
    """Time every checkout from ``engine``'s pool (until the engine is disposed: a new
    pool is not timed)."""
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError  # noqa: PLC0415 - see above

    pool = engine.pool
    connect: Callable[[], Any] = pool.connect
    observe = metrics.pool_wait.observe
    timed_out = metrics.pool_timeouts.inc
    clock = time.perf_counter

    def timed_connect() -> Any:
        started = clock()
        try:
            return connect()
        except PoolTimeoutError:
            timed_out()
            raise
        finally:
            observe(clock() - started)

    pool.connect = timed_connect  # type: ignore[method-assign]
