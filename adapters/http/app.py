"""``create_app``: the tokenplans ASGI app, built the way Starlette apps are built.

Declarative ``routes``, ``middleware`` and ``exception_handlers``; the wired service and
identity come in as arguments (the composition root builds them), so tests build the
same app with in-memory parts. Nothing here opens a resource, so there is no lifespan:
a mounted sub-app never receives lifespan events anyway, and the composition root that
creates the engine disposes of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import BaseRoute, Route

from tokenplans import IdentityProvider, PaymentService, TokenService

from . import endpoints, openapi
from .auth import BearerBackend
from .docs import docs_routes
from .errors import EXCEPTION_HANDLERS, CauseLog, logger
from .middleware import (
    REQUEST_ID_HEADER,
    BodyLimitMiddleware,
    JsonCORSMiddleware,
    RequestIdMiddleware,
)
from .payments import PAYMENT_PATHS, payment_routes, payment_schemas
from .routing import SUBJECT, SubjectRoute

DEFAULT_CORS_ORIGINS = ("http://localhost:5173", "http://localhost:3000")
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0
_PROBE_SUBJECT = "tokenplans:readiness-probe"

#: Every API route with its OpenAPI fragment: (method, path, endpoint, fragment).
API: Sequence[tuple[str, str, Callable[..., Any], Mapping[str, Any]]] = (
    ("GET", "/", endpoints.root, openapi.ROOT),
    ("GET", "/api/health", endpoints.health, openapi.HEALTH),
    ("GET", "/api/health/ready", endpoints.ready, openapi.READY),
    ("GET", "/api/plans", endpoints.plans, openapi.PLANS),
    ("GET", "/api/tokens/usage", endpoints.usage, openapi.USAGE),
    ("POST", "/api/tokens/set-plan", endpoints.set_plan, openapi.SET_PLAN),
    ("POST", "/api/tokens/consume", endpoints.consume, openapi.CONSUME),
    ("GET", "/api/tokens/ledger", endpoints.ledger, openapi.LEDGER),
    ("GET", "/api/admin/accounts/{subject}", endpoints.admin_usage, openapi.ADMIN_USAGE),
    (
        "POST",
        "/api/admin/accounts/{subject}/set-plan",
        endpoints.admin_set_plan,
        openapi.ADMIN_SET_PLAN,
    ),
    ("POST", "/api/admin/accounts/{subject}/grant", endpoints.admin_grant, openapi.ADMIN_GRANT),
    (
        "POST",
        "/api/admin/accounts/{subject}/consume",
        endpoints.admin_consume,
        openapi.ADMIN_CONSUME,
    ),
    ("GET", "/api/admin/accounts/{subject}/ledger", endpoints.admin_ledger, openapi.ADMIN_LEDGER),
    ("GET", "/openapi.json", endpoints.openapi, openapi.OPENAPI),
)


def create_app(
    service: TokenService,
    identity: IdentityProvider,
    *,
    cors_origins: Sequence[str] = DEFAULT_CORS_ORIGINS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS,
    readiness: Callable[[], str | None] | None = None,
    base_url: str = "",
    title: str = "tokenplans",
    extra_routes: Sequence[BaseRoute] = (),
    extra_openapi_paths: Mapping[str, Any] = {},
    payments: PaymentService | None = None,
) -> Starlette:
    """The tokenplans HTTP API over ``service``, authenticating with ``identity``.

    ``readiness`` returns ``None`` when the service can serve, or the reason it cannot
    (a missing or outdated schema: answered as a 503 naming it), and raises
    :class:`tokenplans.StorageUnavailableError` when the database is down (the
    composition root passes the SQL store's ``check_ready``); without it the readiness
    route reads one account through the store. ``base_url`` is what ``GET /``
    reports (default: derived from the request). ``extra_routes`` and
    ``extra_openapi_paths`` let an extension (payments) add its endpoints and their
    documentation; they share the middleware, authentication and error handling.
    ``payments`` adds the payment endpoints of :mod:`.payments` (without it, none exist).
    A request body larger than ``max_body_bytes`` is a 413; one not received in full
    within ``body_timeout_seconds`` of the request's start is a 408.
    """
    if max_body_bytes < 0:
        raise ValueError(f"max_body_bytes must be >= 0, got {max_body_bytes}")
    if not body_timeout_seconds > 0:
        raise ValueError(f"body_timeout_seconds must be > 0, got {body_timeout_seconds}")
    routes: list[BaseRoute] = [
        (SubjectRoute if SUBJECT in path else Route)(
            path, endpoint, methods=[method], name=endpoint.__name__
        )
        for method, path, endpoint, _ in API
    ]
    routes += docs_routes(title)
    routes += extra_routes
    payment_paths: Mapping[str, Any] = {}
    if payments is not None:
        routes += payment_routes(payments)
        payment_paths = PAYMENT_PATHS
    document = openapi.document(
        service.catalog,
        [openapi.Operation(method, path, spec) for method, path, _, spec in API],
        title=title,
        extra_paths={"/docs": {"get": openapi.DOCS}, **payment_paths, **extra_openapi_paths},
        extra_schemas=payment_schemas(service.catalog) if payments is not None else {},
    )
    middleware = [
        # Outermost, so that errors and 413s carry CORS headers a browser can read.
        Middleware(
            JsonCORSMiddleware,
            allow_origins=list(cors_origins),
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[REQUEST_ID_HEADER],
        ),
        Middleware(RequestIdMiddleware),
        Middleware(
            BodyLimitMiddleware, max_bytes=max_body_bytes, timeout_seconds=body_timeout_seconds
        ),
        Middleware(AuthenticationMiddleware, backend=BearerBackend(identity)),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    # Every 503 logs its cause through this, at most once per cause per 10 s.
    app.state.unavailable_log = CauseLog(logger)
    app.state.tokenplans = endpoints.ApiState(
        service=service,
        readiness=readiness or _store_probe(service),
        title=title,
        base_url=base_url,
        openapi=document,
    )
    return app


def _store_probe(service: TokenService) -> Callable[[], None]:
    """Readiness for a store that has no probe of its own: one read through it."""

    def probe() -> None:
        service.store.load(_PROBE_SUBJECT)

    return probe
