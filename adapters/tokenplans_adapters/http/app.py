"""``create_app``: the tokenplans ASGI app, built the way Starlette apps are built.

Declarative ``routes``, ``middleware`` and ``exception_handlers``; the wired service and
identity come in as arguments (the composition root builds them), so tests build the
same app with in-memory parts. The routes come from the resource modules in
:mod:`.resources`, each a :class:`~.routing.Resource` (its operations with their OpenAPI
fragments, and its schemas): serving a new resource is one more entry in
:data:`RESOURCES`. Nothing here opens anything; the lifespan only runs the closers the
composition root hands over (``on_shutdown``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import BaseRoute

from tokenplans import IdentityProvider, PaymentService, TokenService

from . import offload, openapi
from .auth import BearerBackend
from .errors import EXCEPTION_HANDLERS, CauseLog, logger
from .middleware import (
    REQUEST_ID_HEADER,
    BodyLimitMiddleware,
    JsonCORSMiddleware,
    RequestIdMiddleware,
    SubjectConcurrencyMiddleware,
)
from .readiness import DEFAULT_READINESS_TIMEOUT_SECONDS, DeadlineProbe
from .resources import admin, checks, documents, holds, meta, pricing, reports, tokens, webhooks
from .resources import payments as payment_resource
from .routing import Resource
from .state import ApiState

#: The settings' defaults (the composition root's configuration reads them from here).
DEFAULT_CORS_ORIGINS = ("http://localhost:5173", "http://localhost:3000")
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_BODY_TIMEOUT_SECONDS = 30
#: Requests taking this long or more are logged (uvicorn's access log is off by default).
DEFAULT_SLOW_REQUEST_MS = 1000
_PROBE_SUBJECT = "tokenplans:readiness-probe"

#: The API's resources, always served, in the order the document lists them.
RESOURCES: Sequence[Resource] = (
    meta.RESOURCE,
    pricing.RESOURCE,
    tokens.RESOURCE,
    admin.RESOURCE,
    reports.RESOURCE,
    holds.RESOURCE,
    checks.RESOURCE,
    documents.RESOURCE,
    webhooks.RESOURCE,
)


def create_app(
    service: TokenService,
    identity: IdentityProvider,
    *,
    cors_origins: Sequence[str] = DEFAULT_CORS_ORIGINS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS,
    max_concurrent_per_subject: int = 0,
    readiness: Callable[[], str | None] | None = None,
    readiness_timeout_seconds: float = DEFAULT_READINESS_TIMEOUT_SECONDS,
    base_url: str = "",
    title: str = "tokenplans",
    extra_routes: Sequence[BaseRoute] = (),
    extra_openapi_paths: Mapping[str, Any] = {},
    payments: PaymentService | None = None,
    on_shutdown: Sequence[Callable[[], object]] = (),
    on_startup: Sequence[Callable[[], object]] = (),
    webhook_target: Callable[[str], None] | None = None,
    store_threads: int | None = None,
    slow_request_ms: int = DEFAULT_SLOW_REQUEST_MS,
) -> Starlette:
    """The tokenplans HTTP API over ``service``, authenticating with ``identity``.

    ``readiness`` returns ``None`` when the service can serve, or the reason it cannot
    (a missing or outdated schema: answered as a 503 naming it), and raises
    :class:`tokenplans.StorageUnavailableError` when the database is down (the
    composition root passes the SQL store's ``check_ready``); without it the readiness
    route reads one account through the store. A readiness probe answers within
    ``readiness_timeout_seconds`` (a 503 when the check is not done by then; see
    :mod:`.readiness`). ``base_url`` is what ``GET /``
    reports (default: derived from the request). ``extra_routes`` and
    ``extra_openapi_paths`` let an extension add its endpoints and their documentation;
    they share the middleware, authentication and error handling. ``payments`` adds the
    payment endpoints of :mod:`.resources.payments` (without it, none exist).
    A request body larger than ``max_body_bytes`` is a 413; one not received in full
    within ``body_timeout_seconds`` of the request's start is a 408.
    ``max_concurrent_per_subject`` (0: no limit) bounds the requests one non-admin
    subject has in progress in this process at once; one more is a 429
    (:class:`~.middleware.SubjectConcurrencyMiddleware`). ``on_shutdown``
    runs, in order, when the app's lifespan ends (the composition root closes its engine
    and clients so); a mounted app receives no lifespan, so its host closes them.
    ``on_startup`` runs when the lifespan starts (the composition root's webhook worker).
    ``webhook_target`` checks a new webhook endpoint's URL (raising ``ValueError`` to
    refuse it; see :mod:`.resources.webhooks`).
    ``store_threads`` sets how many threads the process runs storage calls on
    (:func:`~.offload.use_threads`; ``None``: as it is, 40 by default); give as many as
    the store's connection pool has connections. A request taking ``slow_request_ms``
    or more (``0``: none) is logged in one line (:class:`~.middleware.RequestIdMiddleware`).
    """
    if max_body_bytes < 0:
        raise ValueError(f"max_body_bytes must be >= 0, got {max_body_bytes}")
    if not body_timeout_seconds > 0:
        raise ValueError(f"body_timeout_seconds must be > 0, got {body_timeout_seconds}")
    if max_concurrent_per_subject < 0:
        raise ValueError(
            f"max_concurrent_per_subject must be >= 0, got {max_concurrent_per_subject}"
        )
    if store_threads is not None:
        offload.use_threads(store_threads)
    served = list(RESOURCES)
    routes: list[BaseRoute] = [route for resource in served for route in resource.all_routes()]
    routes += extra_routes
    if payments is not None:
        paying = payment_resource.resource(payments)
        served.append(paying)
        routes += paying.all_routes()
    document = openapi.document(
        service.catalog, served, title=title, extra_paths=extra_openapi_paths
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
        Middleware(RequestIdMiddleware, slow_seconds=slow_request_ms / 1000 or None),
        Middleware(
            BodyLimitMiddleware, max_bytes=max_body_bytes, timeout_seconds=body_timeout_seconds
        ),
        Middleware(AuthenticationMiddleware, backend=BearerBackend(identity)),
    ]
    if max_concurrent_per_subject:
        middleware.append(
            Middleware(SubjectConcurrencyMiddleware, limit=max_concurrent_per_subject)
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=_closing(on_shutdown, on_startup),
    )
    # Every 503 logs its cause through this, at most once per cause per 10 s.
    app.state.unavailable_log = CauseLog(logger)
    app.state.tokenplans = ApiState(
        service=service,
        readiness=DeadlineProbe(readiness or _store_probe(service), readiness_timeout_seconds),
        title=title,
        base_url=base_url,
        openapi=document,
        payments=payments,
        webhook_target=webhook_target,
    )
    return app


def _closing(
    closers: Sequence[Callable[[], object]],
    starters: Sequence[Callable[[], object]] = (),
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """A lifespan that calls ``starters`` when it starts and ``closers`` when it ends."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        for start in starters:
            start()
        try:
            yield
        finally:
            for close in closers:
                close()

    return lifespan


def _store_probe(service: TokenService) -> Callable[[], None]:
    """Readiness for a store that has no probe of its own: one read through it."""

    def probe() -> None:
        service.store.load(_PROBE_SUBJECT)

    return probe
