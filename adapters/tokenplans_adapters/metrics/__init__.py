"""Prometheus metrics for a tokenplans server (the ``metrics`` extra: prometheus-client).

Counted at the edge, never in the core: requests by route template and status, with
latency histograms (:class:`RequestMetricsMiddleware`); ledger entries committed by
kind, commits and write conflicts (:func:`counting_store`, around any account store);
the database pool's checkout wait (:func:`time_pool_checkouts`). The outbox and its
webhook deliveries plug in with :meth:`Metrics.watch_outbox` and
:meth:`Metrics.count_delivery`. ``GET /metrics`` (:func:`metrics_route`) exposes them;
docs/metrics.md lists every metric.
"""

from .counting import CountingStore, counting_store
from .http import METRICS_PATH, RequestMetricsMiddleware, metrics_openapi, metrics_route
from .pool import time_pool_checkouts
from .registry import CONTENT_TYPE, Metrics, OutboxStats, multiprocess_dir

__all__ = [
    "CONTENT_TYPE",
    "METRICS_PATH",
    "CountingStore",
    "Metrics",
    "OutboxStats",
    "RequestMetricsMiddleware",
    "counting_store",
    "metrics_openapi",
    "metrics_route",
    "multiprocess_dir",
    "time_pool_checkouts",
]
