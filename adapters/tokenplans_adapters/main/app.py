"""The composition root: the one place that knows every adapter and wires them together.

``build_app(settings)`` turns :class:`~tokenplans_adapters.main.config.Settings` into the ASGI app;
the ``build_*`` helpers are separate so the CLI can validate each part (catalog, prices,
identity) and report a bad setting in one line before a server starts.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from tokenplans import (
    PaymentGateway,
    PaymentService,
    PlanCatalog,
    PriceBook,
    Pricer,
    SystemClock,
    TokenService,
    UnknownModelError,
)
from tokenplans.ports import SupportsClose
from tokenplans_adapters.http import create_app
from tokenplans_adapters.jwt_identity import JwtIdentity
from tokenplans_adapters.portal import Portal, PortalOptions
from tokenplans_adapters.razorpay import OfflineGateway
from tokenplans_adapters.sql import SqlAccountStore, make_engine, server_pool
from tokenplans_adapters.sql.engine import SQLITE_SYNCHRONOUS_LEVELS
from tokenplans_adapters.stripe import OfflineStripe
from tokenplans_adapters.webhooks import DeliveryWorker, check_target

from .config import MIN_SECRET_BYTES, ConfigError, Settings
from .metrics import build_metrics


def build_catalog(settings: Settings) -> PlanCatalog:
    """The configured catalog file, or the original service's three plans. Raises
    :class:`tokenplans.CatalogError` naming the bad entry."""
    if settings.plans_file is None:
        return PlanCatalog.default()
    return PlanCatalog.from_file(settings.plans_file)


def build_pricer(settings: Settings) -> Pricer | None:
    """The configured prices: the price book file, the genai-prices table at the
    configured credits per dollar, or ``None`` (one credit per counted token). Raises
    :class:`tokenplans.PriceBookError` naming the model and field of a bad book, or
    :class:`ConfigError` when the genai-prices extra is not installed or
    ``TOKENPLANS_PRICED_MODELS`` names a model its table lacks."""
    if settings.price_book is not None:
        return PriceBook.from_file(settings.price_book)
    if settings.prices is None or settings.credits_per_usd is None:
        return None
    try:
        from tokenplans_adapters.genai_prices import (  # noqa: PLC0415
            GenaiPricesPricer,
            table_version,
        )
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"TOKENPLANS_PRICES=genai-prices needs the genai-prices package ({error}): "
            "install tokenplans with its prices extra, or pip install 'genai-prices>=0.2.3,<0.3'"
        ) from None
    try:
        return GenaiPricesPricer(
            _credits_per_usd(settings.credits_per_usd), listed_models=settings.priced_models
        )
    except UnknownModelError as error:
        raise ConfigError(
            f"TOKENPLANS_PRICED_MODELS: {error.model!r} is not in the genai-prices table "
            f"{table_version()!r}; name each model as the table does (e.g. gpt-4o)"
        ) from None


def _credits_per_usd(value: str) -> int | str:
    """An integer as an int, else the decimal text the pricer reads exactly."""
    return int(value) if value.isdecimal() else value


def build_identity(settings: Settings) -> JwtIdentity:
    """The JWT identity for the configured key. Raises
    :class:`tokenplans_adapters.jwt_identity.JwtConfigError` for an unusable configuration."""
    return JwtIdentity(
        secret=None if settings.has_public_key_identity else settings.jwt_secret,
        public_key=_pem(settings.jwt_public_key),
        jwks_url=settings.jwt_jwks_url,
        algorithms=settings.jwt_algorithms,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        require_exp=settings.jwt_require_exp,
    )


def build_app(settings: Settings) -> Starlette:
    """The tokenplans ASGI app over the configured database (its schema must exist:
    ``tokenplans db upgrade``, which ``tokenplans serve`` runs for you)."""
    catalog = build_catalog(settings)
    identity = build_identity(settings)
    observed = build_metrics(settings)  # off: every step below a no-op
    engine = build_engine(settings)
    observed.watch_engine(engine)
    store = SqlAccountStore(engine)
    accounts = observed.count(store)
    clock = SystemClock()
    thresholds = settings.event_thresholds
    service = TokenService(
        accounts, catalog, clock, pricer=build_pricer(settings), thresholds=thresholds
    )
    gateways = build_gateways(settings)
    closers: list[Callable[[], object]] = [engine.dispose]
    closers += [close for gateway in gateways.values() if (close := closer_of(gateway))]
    starters: list[Callable[[], object]] = []
    if settings.webhook_worker:
        # Each server process delivers webhooks from a thread of its own, started with
        # the app and stopped before the engine is disposed (docs/events.md).
        worker = DeliveryWorker(store, settings.delivery, on_outcome=observed.count_delivery)
        starters.append(worker.start)
        closers.insert(0, worker.stop)
    observed.watch_outbox(lambda: store.outbox_backlog(clock.now()))
    payments = (
        PaymentService(accounts, accounts, catalog, clock, gateways=gateways, thresholds=thresholds)
        if gateways
        else None
    )
    portal = build_portal(settings, service, payments)
    app = create_app(
        service,
        identity,
        cors_origins=settings.cors_origins,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        max_concurrent_per_subject=settings.max_concurrent_per_subject,
        readiness=store.check_ready,
        readiness_timeout_seconds=settings.readiness_timeout_seconds,
        base_url=settings.base_url or "",  # "": derived from each request
        title="tokenplans",
        payments=payments,
        extra_routes=[*observed.routes, *(portal.routes() if portal else ())],
        extra_openapi_paths={
            **observed.openapi_paths,
            **(portal.openapi_paths() if portal else {}),
        },
        # What the root made is released when the app shuts down: the engine's pool,
        # the payment clients' connections.
        on_shutdown=closers,
        on_startup=starters,
        webhook_target=partial(check_target, allow_private=settings.webhook_allow_private_targets),
        slow_request_ms=settings.slow_request_ms,
    )
    return observed.instrument(app)


def portal_secret(settings: Settings) -> str | None:
    """What the usage page signs its links and sessions with: ``TOKENPLANS_PORTAL_SECRET``,
    else a key derived from the JWT secret (whoever holds it can mint a token for any
    subject already, so a page link grants nothing more), else ``None``: no page."""
    if settings.portal_secret:
        return settings.portal_secret
    if settings.jwt_secret and not settings.has_public_key_identity:
        return hmac.new(
            settings.jwt_secret.encode(), b"tokenplans usage page", hashlib.sha256
        ).hexdigest()
    return None


def build_portal(
    settings: Settings, service: TokenService, payments: PaymentService | None
) -> Portal | None:
    """The usage page's routes (``GET /account`` and its links), or ``None`` without a
    secret to sign them. Raises :class:`ConfigError` for a setting that cannot work."""
    secret = portal_secret(settings)
    if secret is None:
        return None
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"TOKENPLANS_PORTAL_SECRET is {len(secret.encode())} bytes; at least "
            f"{MIN_SECRET_BYTES} are needed"
        )
    payer: Callable[[str], dict[str, str]] | None = None
    if settings.portal_offline_payments:
        gateway = payments.gateway if payments is not None else None
        if not isinstance(gateway, OfflineGateway):
            raise ConfigError(
                "TOKENPLANS_PORTAL_OFFLINE_PAYMENTS needs the offline payment gateway (no "
                "Razorpay keys, and a JWT or offline payment secret): it lets the page pay "
                "orders without money, for development only"
            )
        payer = _offline_payer(gateway)
    return Portal(
        service,
        PortalOptions(
            secret,
            link_ttl_seconds=settings.portal_link_ttl_seconds,
            session_ttl_seconds=settings.portal_session_ttl_seconds,
            frame_ancestors=settings.portal_frame_ancestors,
            offline_payer=payer,
            base_url=_server_url(settings.base_url),
        ),
        payments=payments,
    )


def _server_url(api_base_url: str | None) -> str:
    """Where the page's links point: ``TOKENPLANS_BASE_URL`` (the API's URL, which ends in
    ``/api`` as ``GET /`` reports it) without that ``/api``; "" (each request's own URL)
    when it is unset."""
    url = (api_base_url or "").rstrip("/")
    return url.removesuffix("/api")


def _offline_payer(gateway: OfflineGateway) -> Callable[[str], dict[str, str]]:
    """What the page's offline checkout posts for an order: the proof Razorpay Checkout
    would hand the browser, signed by the offline gateway."""

    def pay(order_id: str) -> dict[str, str]:
        return gateway.checkout_proof(order_id, gateway.new_payment_id())

    return pay


def build_engine(settings: Settings, *, migrating: bool = False) -> Engine:
    """The engine for the configured database, with the configured pool and waits for
    PostgreSQL and MySQL/MariaDB (``migrating``: no deadline per database call, since a
    schema change may rightly take long). Raises :class:`ConfigError` for a SQLite file
    in a folder that does not exist (SQLite would only say "unable to open database
    file", later) or an unknown ``TOKENPLANS_SQLITE_SYNCHRONOUS``; SQLAlchemy's own
    errors for a malformed URL or a missing driver."""
    _check_sqlite_folder(settings.database_url)
    synchronous = settings.sqlite_synchronous.upper()
    if synchronous not in SQLITE_SYNCHRONOUS_LEVELS:
        raise ConfigError(
            f"TOKENPLANS_SQLITE_SYNCHRONOUS must be one of "
            f"{', '.join(SQLITE_SYNCHRONOUS_LEVELS)}, got {settings.sqlite_synchronous!r}"
        )
    call_timeout = settings.db_call_timeout_seconds or None
    waits: dict[str, Any] = {
        "connect_timeout": settings.db_connect_timeout_seconds,
        "call_timeout": None if migrating else call_timeout,
        "keepalive": settings.db_keepalive_seconds,
        "sqlite_synchronous": synchronous,
    }
    pool = pool_limits(settings)
    if pool is None:
        if make_url(settings.database_url).database in (None, "", ":memory:"):
            return make_engine(settings.database_url, **waits)  # one connection, no pool
        # A SQLite file: as many connections as storage threads, none more.
        return make_engine(
            settings.database_url, pool_size=store_threads(settings), max_overflow=0, **waits
        )
    pool_size, max_overflow = pool
    return make_engine(
        settings.database_url, pool_size=pool_size, max_overflow=max_overflow, **waits
    )


#: Storage threads (and connections) per process on SQLite by default: it has one writer
#: at a time, and a few threads keep the event loop fed; 40 cost more CPU per request.
SQLITE_STORE_THREADS = 8


def store_threads(settings: Settings) -> int:
    """How many threads each server process runs storage calls on (the ASGI factory,
    :func:`~tokenplans_adapters.main.asgi.create`, sets them): as many as its pool
    keeps connections (``TOKENPLANS_DB_POOL_SIZE``, else the engine's default for a server
    database and :data:`SQLITE_STORE_THREADS` for SQLite), so that in steady state no
    thread waits for a connection and none is opened per request."""
    pool = pool_limits(settings)
    if pool is not None:
        return pool[0]
    return settings.db_pool_size or SQLITE_STORE_THREADS


def pool_limits(settings: Settings) -> tuple[int, int] | None:
    """``(pool_size, max_overflow)`` of each process's pool on the configured PostgreSQL
    or MySQL/MariaDB database, settings over the engine's defaults; ``None`` for SQLite.
    A process opens at most their sum."""
    default = server_pool(settings.database_url)
    if default is None:
        return None
    return (
        default[0] if settings.db_pool_size is None else settings.db_pool_size,
        default[1] if settings.db_max_overflow is None else settings.db_max_overflow,
    )


def _check_sqlite_folder(url: str) -> None:
    parsed = make_url(url)
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")  # a URI (?uri=true): SQLite's to interpret
    ):
        return
    folder = Path(database).absolute().parent
    if not folder.is_dir():
        raise ConfigError(
            f"database URL {parsed.render_as_string(hide_password=True)}: the folder "
            f"{folder} does not exist; create it, or point the URL at an existing folder"
        )


def closer_of(gateway: PaymentGateway | None) -> Callable[[], object] | None:
    """What releases ``gateway``'s connections (the Razorpay client's pool), if anything."""
    return gateway.close if isinstance(gateway, SupportsClose) else None


def build_gateways(settings: Settings) -> dict[str, PaymentGateway]:
    """The configured payment gateways by provider name, the default provider (whose
    routes today's ``/api/payments/order``, ``/verify`` and ``/webhook`` are) first. A
    new provider is one more entry here. Empty: no payment routes.

    Razorpay (or its offline stand-in) comes first, then Stripe. Razorpay's offline
    stand-in is left out when Stripe has a key: a server taking real payments at Stripe
    does not also take offline ones."""
    razorpay = build_gateway(settings)
    stripe = build_stripe_gateway(settings)
    if settings.stripe_secret_key and not settings.has_razorpay_keys:
        razorpay = None
    gateways = [razorpay, stripe]
    return {gateway.name: gateway for gateway in gateways if gateway is not None}


def build_stripe_gateway(settings: Settings) -> PaymentGateway | None:
    """Stripe when ``STRIPE_SECRET_KEY`` is set, the offline stand-in when
    ``TOKENPLANS_STRIPE_OFFLINE`` is, else ``None``. Both need ``STRIPE_WEBHOOK_SECRET``
    (a Stripe payment is confirmed by its webhook only). Raises :class:`ConfigError`, in
    one line, for a setting that cannot work."""
    key, secret = settings.stripe_secret_key, settings.stripe_webhook_secret
    if settings.stripe_offline and key:
        raise ConfigError(
            "TOKENPLANS_STRIPE_OFFLINE and STRIPE_SECRET_KEY are both set: the offline "
            "stand-in is for development without a key; unset one"
        )
    if not (key or settings.stripe_offline):
        if secret:
            raise ConfigError(
                "STRIPE_WEBHOOK_SECRET is set without STRIPE_SECRET_KEY (or "
                "TOKENPLANS_STRIPE_OFFLINE=true for the offline stand-in)"
            )
        return None
    if not secret:
        raise ConfigError(
            "STRIPE_WEBHOOK_SECRET is not set: Stripe payments are confirmed by its webhook "
            "only, so none could be; set the webhook endpoint's signing secret (whsec_...)"
        )
    if settings.stripe_offline:
        return OfflineStripe(secret)
    assert key is not None  # noqa: S101 - checked above
    if not key.startswith(("sk_", "rk_")):
        raise ConfigError(
            "STRIPE_SECRET_KEY must be a secret key (sk_...) or a restricted key (rk_...), "
            f"not {key[:3]!r}..."
        )
    if not settings.stripe_success_url:
        raise ConfigError(
            "STRIPE_SECRET_KEY is set without TOKENPLANS_STRIPE_SUCCESS_URL: where Stripe "
            "Checkout sends the browser after paying"
        )
    for name, url in (
        ("TOKENPLANS_STRIPE_SUCCESS_URL", settings.stripe_success_url),
        ("TOKENPLANS_STRIPE_CANCEL_URL", settings.stripe_cancel_url),
        ("STRIPE_API_URL", settings.stripe_api_url),
    ):
        if url is not None and not _is_web_url(url):
            raise ConfigError(f"{name} must be an http(s) URL, got {url[:80]!r}")
    # Imported here: httpx is loaded only by a server that talks to Stripe.
    from tokenplans_adapters.stripe.gateway import StripeGateway  # noqa: PLC0415

    return StripeGateway(
        key,
        [secret],
        success_url=settings.stripe_success_url,
        cancel_url=settings.stripe_cancel_url,
        api_url=settings.stripe_api_url,
    )


def _is_web_url(url: str) -> bool:
    scheme, _, rest = url.partition("://")
    return scheme.lower() in ("http", "https") and bool(rest) and not any(c.isspace() for c in url)


def build_gateway(settings: Settings) -> PaymentGateway | None:
    """Razorpay when its keys are configured, else the offline stand-in (development), or
    ``None`` (no payment routes) when there is no secret to sign offline payments with.
    Either checks webhooks with the configured webhook secrets only: without one, every
    webhook is refused. Raises :class:`ConfigError` for half a configuration."""
    if settings.razorpay_previous_webhook_secret and not settings.razorpay_webhook_secret:
        raise ConfigError(
            "TOKENPLANS_RAZORPAY_PREVIOUS_WEBHOOK_SECRET is set without "
            "RAZORPAY_WEBHOOK_SECRET (the current one)"
        )
    webhook_secrets = [
        secret
        for secret in (settings.razorpay_webhook_secret, settings.razorpay_previous_webhook_secret)
        if secret
    ]
    if settings.has_razorpay_keys:
        if not (settings.razorpay_key_id and settings.razorpay_key_secret):
            raise ConfigError("RAZORPAY_KEY_ID and RAZORPAY_KEY_SECRET must be set together")
        # Imported here: httpx is loaded only by a server that talks to Razorpay.
        from tokenplans_adapters.razorpay.gateway import RazorpayGateway  # noqa: PLC0415

        return RazorpayGateway(
            settings.razorpay_key_id,
            settings.razorpay_key_secret,
            webhook_secrets,
            api_url=settings.razorpay_api_url,
        )
    secret = offline_payment_secret(settings)
    return None if secret is None else OfflineGateway(secret, webhook_secrets=webhook_secrets)


def offline_payment_secret(settings: Settings) -> str | None:
    """What the offline gateway signs with: ``TOKENPLANS_OFFLINE_PAYMENT_SECRET``, else a
    key derived from the JWT secret. Whoever holds the JWT secret can mint an admin token
    and set any plan already, so signing offline payments with it grants nothing more;
    and ``tokenplans dev pay`` derives the same key from the same configuration."""
    if settings.offline_payment_secret:
        return settings.offline_payment_secret
    if settings.jwt_secret and not settings.has_public_key_identity:
        return hmac.new(
            settings.jwt_secret.encode(), b"tokenplans offline payment gateway", hashlib.sha256
        ).hexdigest()
    return None


def _pem(value: str | None) -> str | None:
    """A PEM given inline (``-----BEGIN ...``), or the path of a PEM file."""
    if value is None or value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        return Path(value).expanduser().read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"TOKENPLANS_JWT_PUBLIC_KEY: cannot read {value!r}: {error}") from None
