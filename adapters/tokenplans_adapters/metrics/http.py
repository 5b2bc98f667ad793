"""Request metrics as a pure ASGI middleware, and the ``GET /metrics`` route.

The middleware labels each request with its route's path *template*
(``/api/admin/accounts/{subject}``), read from the endpoint the router matched, never the
raw path: a path that matched no route counts as ``<unmatched>``, so scanners cannot
grow the series. Its cost per request is two clock reads, a dictionary look-up and two
updates (docs/metrics.md, "Cost").
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .registry import CONTENT_TYPE, Metrics

__all__ = ["METRICS_PATH", "RequestMetricsMiddleware", "metrics_openapi", "metrics_route"]

METRICS_PATH = "/metrics"
UNMATCHED = "<unmatched>"
#: The methods a label may name; any other counts as ``other``.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_templates(routes: Iterable[BaseRoute], prefix: str = "") -> dict[Any, str]:
    """Each endpoint of ``routes`` (mounts followed) -> its path template."""
    templates: dict[Any, str] = {}
    for route in routes:
        if isinstance(route, Route):
            templates[route.endpoint] = prefix + route.path
        elif isinstance(route, Mount):
            templates.update(route_templates(route.routes, prefix + route.path))
    return templates


class RequestMetricsMiddleware:
    """Counts and times every HTTP request of ``app`` by method, route template and
    status. ``routes`` are the app's (their endpoints name the templates)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self._metrics = metrics
        self._templates = route_templates(routes)
        # The labelled children, made once per (method, route[, status]).
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler is answered so

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "other"
        route = self._templates.get(scope.get("endpoint"), UNMATCHED)
        counted = self._counted.get((method, route, status))
        if counted is None:
            counted = self._metrics.requests.labels(method, route, str(status))
            self._counted[method, route, status] = counted
        timed = self._timed.get((method, route))
        if timed is None:
            timed = self._timed[method, route] = self._metrics.request_seconds.labels(method, route)
        counted.inc()
        timed.observe(seconds)


def metrics_route(metrics: Metrics, *, token: str | None = None) -> Route:
    """``GET /metrics``: the Prometheus text format. With ``token``, only a request
    bearing ``Authorization: Bearer <token>`` is answered (else a 401)."""
    expected = None if token is None else f"Bearer {token}".encode()

    async def exposition(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return JSONResponse(
                    {"error": "unauthorized"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return Route(METRICS_PATH, exposition, methods=["GET"])


def metrics_openapi(*, token: bool) -> Mapping[str, Any]:
    """The OpenAPI path item of ``GET /metrics``."""
    answers: dict[str, Any] = {
        "200": {
            "description": "Every metric, in the Prometheus text exposition format "
            "(docs/metrics.md lists them).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
    who = "Open to anyone who can reach the server (it names no subject)."
    if token:
        answers["401"] = {"description": "The metrics token is missing or wrong."}
        who = "Needs `Authorization: Bearer <TOKENPLANS_METRICS_TOKEN>` (not a user's JWT)."
    return {
        METRICS_PATH: {
            "get": {
                "operationId": "getMetrics",
                "summary": "Prometheus metrics of this server",
                "description": who,
                "tags": ["meta"],
                "security": [],
                "responses": answers,
            }
        }
    }
