"""Wiring the metrics adapter into the server, when the ``metrics`` extra is installed and
``TOKENPLANS_METRICS`` is not false (docs/metrics.md).

Without the extra, or turned off, nothing is wrapped and no middleware is added: the
request path costs exactly what it costs without metrics.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from tokenplans import StorageUnavailableError
from tokenplans.ports import Backlog

from .config import Settings

__all__ = ["MULTIPROCESS_VARIABLE", "Observed", "build_metrics", "metrics_installed", "shared_by"]

#: prometheus_client's multiprocess mode: the folder every worker writes its values to.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

S = TypeVar("S")

logger = logging.getLogger("tokenplans.metrics")


def metrics_installed() -> bool:
    """Whether the ``metrics`` extra (prometheus-client) is installed."""
    return importlib.util.find_spec("prometheus_client") is not None


class Observed:
    """What the composition root asks of metrics; each step does nothing when they are off."""

    def __init__(self, settings: Settings) -> None:
        self.metrics: Any = None
        self._token = settings.metrics_token
        if settings.metrics and metrics_installed():
            from tokenplans_adapters.metrics import Metrics  # noqa: PLC0415 - the extra

            self.metrics = Metrics()

    @property
    def enabled(self) -> bool:
        return self.metrics is not None

    def count(self, store: S) -> S:
        """``store`` with its commits and conflicts counted."""
        if self.metrics is None:
            return store
        from tokenplans_adapters.metrics import counting_store  # noqa: PLC0415

        return counting_store(store, self.metrics)

    def watch_outbox(self, backlog: Callable[[], Backlog]) -> None:
        """Report the outbox's backlog and its oldest event's age at each scrape."""
        if self.metrics is None:
            return
        from tokenplans_adapters.metrics import OutboxStats  # noqa: PLC0415

        def read() -> OutboxStats | None:
            try:
                now = backlog()
            except StorageUnavailableError:
                # The database is down (or not upgraded yet): /metrics still answers,
                # without the outbox gauges, since that is when metrics matter most.
                logger.warning("the outbox backlog could not be read", exc_info=True)
                return None
            return OutboxStats(now.pending, now.oldest_age_seconds if now.pending else None)

        self.metrics.watch_outbox(read)

    def count_delivery(self, outcome: str) -> None:
        """Count one webhook delivery attempt by how it ended (``delivered``, ...)."""
        if self.metrics is not None:
            self.metrics.count_delivery(str(outcome))

    def watch_engine(self, engine: Engine) -> None:
        """Time ``engine``'s pool checkouts."""
        if self.metrics is not None:
            from tokenplans_adapters.metrics import time_pool_checkouts  # noqa: PLC0415

            time_pool_checkouts(engine, self.metrics)

    @property
    def routes(self) -> Sequence[BaseRoute]:
        """``GET /metrics``, when on."""
        if self.metrics is None:
            return ()
        from tokenplans_adapters.metrics import metrics_route  # noqa: PLC0415

        return (metrics_route(self.metrics, token=self._token),)

    @property
    def openapi_paths(self) -> Mapping[str, Any]:
        if self.metrics is None:
            return {}
        from tokenplans_adapters.metrics import metrics_openapi  # noqa: PLC0415

        return metrics_openapi(token=self._token is not None)

    def instrument(self, app: Starlette) -> Starlette:
        """``app`` with its requests counted and timed (the outermost middleware)."""
        if self.metrics is not None:
            from tokenplans_adapters.metrics import RequestMetricsMiddleware  # noqa: PLC0415

            app.add_middleware(RequestMetricsMiddleware, metrics=self.metrics, routes=app.routes)
        return app


def build_metrics(settings: Settings) -> Observed:
    """The server's metrics as configured (off: every step a no-op)."""
    return Observed(settings)


@contextmanager
def shared_by(settings: Settings, workers: int) -> Iterator[str | None]:
    """For ``serve --workers N`` (N > 1) with metrics on: prometheus_client's
    multiprocess mode, so that a scrape answered by any worker sums every worker's
    counts (a per-worker registry would answer whichever worker the connection reached).
    The workers write their values to a new folder named by ``PROMETHEUS_MULTIPROC_DIR``
    (or the operator's own, if that is set already, which is left as it is), removed when
    the server stops. Yields the folder (``None``: one process, its own registry)."""
    if workers <= 1 or not settings.metrics or not metrics_installed():
        yield None
        return
    given = os.environ.get(MULTIPROCESS_VARIABLE)
    if given:
        yield given
        return
    folder = tempfile.mkdtemp(prefix="tokenplans-metrics-")
    os.environ[MULTIPROCESS_VARIABLE] = folder
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROCESS_VARIABLE, None)
        shutil.rmtree(folder, ignore_errors=True)
