"""The metrics tokenplans keeps, by name, and their exposition (docs/metrics.md).

Every label has few values, fixed by the code: a route *template*, a method, a status,
an entry kind, an outcome. Never a subject, a hold id, a key or a raw path: a label's
every value is a time series in Prometheus, and ids would grow them without bound.

One :class:`Metrics` per app, each with its own registry (so tests and several apps in
one process never collide). With ``PROMETHEUS_MULTIPROC_DIR`` set before
``prometheus_client`` is imported (``tokenplans serve --workers N`` sets it for its
workers), the values live in files there and :meth:`Metrics.exposition` sums every
worker's, so one scrape sees the whole server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable

import attrs
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "DELIVERY_OUTCOME", "Metrics", "OutboxStats", "multiprocess_dir"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Request latencies, in seconds: a debit takes about a millisecond on SQLite, a few on a
#: database across the network; the tail goes up to a 30 s body timeout.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
#: Waits for a pooled connection: zero almost always, the pool timeout (30 s) at worst.
POOL_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)
#: What a delivery outcome may be called: a short word, never an id.
DELIVERY_OUTCOME = re.compile(r"[a-z][a-z_]{0,31}")


def multiprocess_dir() -> str | None:
    """The folder every worker's values live in, when multiprocess mode is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


@attrs.frozen
class OutboxStats:
    """What the outbox holds now: events not yet delivered everywhere, and how old the
    oldest of them is (``None``: none waiting)."""

    backlog: int
    oldest_age_seconds: float | None


class _OutboxCollector(Collector):
    """Reads the outbox when scraped (a gauge of *now*, the same from any worker)."""

    def __init__(self, read: Callable[[], OutboxStats | None]) -> None:
        self._read = read

    @staticmethod
    def describe() -> list[GaugeMetricFamily]:
        """The gauges without their values: what registering reads, so that registering
        never reads the outbox (the database may not be there yet)."""
        return [
            GaugeMetricFamily(
                "tokenplans_outbox_backlog", "Events waiting to be delivered to some endpoint."
            ),
            GaugeMetricFamily(
                "tokenplans_outbox_oldest_age_seconds",
                "Age of the oldest event waiting to be delivered (0 when none waits).",
            ),
        ]

    def collect(self) -> Iterable[Metric]:
        stats = self._read()
        if stats is None:  # unreadable now: the scrape goes on without these gauges
            return []
        backlog, age = self.describe()
        backlog.add_metric([], stats.backlog)
        age.add_metric([], stats.oldest_age_seconds or 0.0)
        return [backlog, age]


class Metrics:
    """The counters and histograms of one app, and their exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._scraped: list[Collector] = []
        self.requests = Counter(
            "tokenplans_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "tokenplans_http_request_duration_seconds",
            "Time from a request's start to its answer's end, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.entries = Counter(
            "tokenplans_ledger_entries",
            "Ledger entries committed, by kind (debited, hold_placed, hold_settled, "
            "hold_released, hold_expired, period_reset, ...).",
            ["kind"],
            registry=self.registry,
        )
        self.credits = Counter(
            "tokenplans_ledger_credits",
            "Credits moved by the ledger entries committed, by kind (the entries' amounts).",
            ["kind"],
            registry=self.registry,
        )
        self.commits = Counter(
            "tokenplans_commits",
            "Account changes committed (one transaction each).",
            registry=self.registry,
        )
        self.conflicts = Counter(
            "tokenplans_write_conflicts",
            "Writes refused because another request changed the account first; each is "
            "retried from a fresh read until the attempts run out (then a 503).",
            registry=self.registry,
        )
        self.pool_wait = Histogram(
            "tokenplans_db_pool_wait_seconds",
            "Time to get a database connection from the pool (a wait for a free one, or "
            "opening a new one).",
            buckets=POOL_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.pool_timeouts = Counter(
            "tokenplans_db_pool_timeouts",
            "Requests that found no free database connection within the pool timeout.",
            registry=self.registry,
        )
        self.deliveries = Counter(
            "tokenplans_webhook_deliveries",
            "Webhook delivery attempts, by outcome.",
            ["outcome"],
            registry=self.registry,
        )

    # -- plug-in points --------------------------------------------------------------

    def watch_outbox(self, read: Callable[[], OutboxStats | None]) -> None:
        """Report the outbox's backlog and age, read by ``read`` at each scrape."""
        collector = _OutboxCollector(read)
        self._scraped.append(collector)
        if multiprocess_dir() is None:
            self.registry.register(collector)

    def count_delivery(self, outcome: str) -> None:
        """Count one webhook delivery attempt that ended in ``outcome`` (a short word such
        as ``delivered``, ``failed`` or ``disabled``: never an id)."""
        if not DELIVERY_OUTCOME.fullmatch(outcome):
            raise ValueError(f"a delivery outcome is a short lower-case word, got {outcome!r}")
        self.deliveries.labels(outcome).inc()

    # -- exposition ------------------------------------------------------------------

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format: this process's, or, in
        multiprocess mode, every worker's summed (plus what is read at scrape time)."""
        folder = multiprocess_dir()
        if folder is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        for collector in self._scraped:
            registry.register(collector)
        return generate_latest(registry)
