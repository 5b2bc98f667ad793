"""``tokenplans serve``: check the configuration, upgrade the schema, then serve the API
with uvicorn; ``--dev`` with the development secrets and a banner of ready-made tokens."""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import socket
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tokenplans import ADMIN_SCOPE, PaymentGateway, Pricer
from tokenplans_adapters.jwt_identity import mint_token
from tokenplans_adapters.main.app import (
    build_catalog,
    build_gateways,
    build_identity,
    build_pricer,
    closer_of,
    offline_payment_secret,
    pool_limits,
    portal_secret,
)
from tokenplans_adapters.main.config import Settings
from tokenplans_adapters.main.dev import DEV_FILE, dev_secrets_for, dev_settings, ignored_in_dev
from tokenplans_adapters.main.engines import masked
from tokenplans_adapters.main.metrics import shared_by
from tokenplans_adapters.portal import Signer

from .base import CommandError, Commands, bounded, say
from .db import upgrade_apart
from .tokens import SIGNING_HINT

MAX_PORT = 65535
DEV_TOKEN_TTL = timedelta(hours=24)
DEV_USER = "dev-user"
DEV_ADMIN = "dev-admin"


def add(commands: Commands) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve the HTTP API with uvicorn",
        description="Create or upgrade the schema, then serve the API with uvicorn.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=bounded(1, MAX_PORT), default=8000, help="TCP port (default 8000)"
    )
    parser.add_argument("--workers", type=bounded(1), default=1, help="processes (default 1)")
    parser.add_argument(
        "--dev",
        action="store_true",
        help=(
            f"development mode: its own JWT and payment secrets (kept in {DEV_FILE}, never "
            "the configured ones), ready-made tokens and the offline payment gateway"
        ),
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    try:
        import uvicorn  # noqa: PLC0415 - only `serve` needs the server
    except ModuleNotFoundError as error:
        raise CommandError(
            f"serve needs uvicorn ({error}): install tokenplans with its server extra, "
            "or pip install uvicorn"
        ) from None

    from tokenplans_adapters.main.logs import uvicorn_log_config  # noqa: PLC0415 - it imports uvicorn too

    url = f"http://{display_host(args.host)}:{args.port}"
    build_catalog(settings)
    pricer = build_pricer(settings)
    if not args.dev:
        if problem := settings.secret_problem():
            raise CommandError(f"{problem}: refusing to serve.\n{SIGNING_HINT}")
        build_identity(settings)
        for gateway in build_gateways(settings).values():
            _close(gateway)
    _check_can_listen(args.host, args.port)
    ignored: list[str] = []
    if args.dev:
        ignored = ignored_in_dev(settings)
        settings = dev_settings(settings, dev_secrets_for(url))
    upgrade_apart(settings)
    # Workers are separate processes that read the environment: hand them exactly
    # the settings validated here (the dev secrets above all).
    os.environ.update(settings.environment())
    connections = _connections(settings, args.workers)
    if args.dev:
        _print_dev_banner(settings, url, ignored, connections, _prices(settings, pricer))
    else:
        _warn_about_payments(settings)
        if connections:
            say(f"database {masked(settings.database_url)}: {connections}")
    # Several workers count into one folder, so that any worker's /metrics sums them all.
    with shared_by(settings, args.workers):
        uvicorn.run(
            "tokenplans_adapters.main.asgi:create",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            # uvicorn's own liveness timeout (5 s) is kept: a worker killed while it is
            # pinged is noticed when the ping times out, so a longer one leaves it dead that
            # long (60 s did). Start-up needs no more: a worker answers pings from a thread
            # it starts before it imports the app, and the spawned child imports only the
            # console script's small module (tokenplans_adapters.console) before that.
            log_level="info",
            log_config=uvicorn_log_config(),
            # A line per request costs about a sixth of a usage read's throughput: off
            # unless asked for; errors and slow requests are logged by the app instead.
            access_log=settings.access_log,
        )
    return 0


def _check_can_listen(host: str, port: int) -> None:
    """Fail before printing tokens for a server that cannot start (uvicorn would only say
    so after start-up). Racy by nature; uvicorn's own bind error remains the last word."""
    try:
        socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        raise CommandError(
            f"--host {host!r} is not an address or name this machine knows: give one of "
            "its addresses, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        ) from None
    try:
        with socket.create_server((host, port), reuse_port=False):
            pass
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            hint = "is another server running there? Choose another port with --port"
        elif error.errno == errno.EACCES:
            hint = "permission denied (ports below 1024 need privileges): use --port 8000"
        elif error.errno == errno.EADDRNOTAVAIL:
            hint = f"{host} is not an address of this machine: use 127.0.0.1 or 0.0.0.0"
        else:
            hint = f"{error.strerror or error}: choose another --host or --port"
        raise CommandError(f"cannot listen on {host}:{port}: {hint}") from None


def _close(gateway: PaymentGateway | None) -> None:
    if (close := closer_of(gateway)) is not None:
        close()


def _warn_about_payments(settings: Settings) -> None:
    """Say how payments will run when it is not with Razorpay and webhooks both (or
    with Stripe, which is not served without its webhook secret)."""
    if settings.stripe_secret_key and not settings.has_razorpay_keys:
        return
    if not settings.has_razorpay_keys:
        what = (
            "payments use the offline gateway (key_id rzp_offline): no money moves, and "
            "anyone holding the JWT secret can sign a payment"
            if offline_payment_secret(settings)
            else "the payment routes are off"
        )
        _warn(
            f"no Razorpay keys are set, so {what}. To take real payments, set "
            "RAZORPAY_KEY_ID, RAZORPAY_KEY_SECRET and RAZORPAY_WEBHOOK_SECRET "
            "(see the README's Payments section)"
        )
    elif not settings.razorpay_webhook_secret:
        _warn(
            "RAZORPAY_WEBHOOK_SECRET is not set, so every webhook is refused and payments "
            "are confirmed only through /api/payments/verify"
        )


def _warn(message: str) -> None:
    say(f"warning: {message}")


def _connections(settings: Settings, workers: int) -> str:
    """How many connections the server may open to a PostgreSQL or MySQL/MariaDB
    database, with the arithmetic (a database refuses clients past its own limit:
    PostgreSQL's max_connections is 100 by default); "" for SQLite."""
    pool = pool_limits(settings)
    if pool is None:
        return ""
    size, overflow = pool
    per_process = (
        f"up to {size + overflow} connections per worker (TOKENPLANS_DB_POOL_SIZE {size} "
        f"+ TOKENPLANS_DB_MAX_OVERFLOW {overflow})"
    )
    if workers == 1:
        return per_process
    return f"{per_process} x {workers} workers = up to {(size + overflow) * workers}"


def _prices(settings: Settings, pricer: Pricer | None) -> str:
    """Which prices debits are charged at, for the development banner."""
    if pricer is None:
        return "none: one credit per counted token (set TOKENPLANS_PRICE_BOOK to price calls)"
    version = pricer.describe().get("version")
    if settings.price_book is not None:
        return f"price book {settings.price_book} (version {version})"
    return f"the {version} table, {settings.credits_per_usd} credits per US dollar"


def _print_dev_banner(
    settings: Settings, url: str, ignored: Sequence[str], connections: str, prices: str
) -> None:
    assert settings.jwt_secret is not None  # noqa: S101 - dev_settings set it
    user = mint_token(DEV_USER, secret=settings.jwt_secret, ttl=DEV_TOKEN_TTL)
    admin = mint_token(
        DEV_ADMIN, secret=settings.jwt_secret, scopes=[ADMIN_SCOPE], ttl=DEV_TOKEN_TTL
    )
    page = _dev_portal_link(settings, url)
    curl = shlex.join(["curl", "-H", f"Authorization: Bearer {user}", f"{url}/api/tokens/usage"])
    ignoring = f" (ignoring {', '.join(ignored)})" if ignored else ""
    print(
        "\n".join(
            [
                "tokenplans development server (do not use this mode in production)",
                f"  API:      {url}",
                f"  docs:     {url}/docs",
                *([f"  usage page ({DEV_USER}, link valid 24 h):", f"    {page}"] if page else []),
                f"  database: {masked(settings.database_url)}",
                *([f"            {connections}"] if connections else []),
                f"  prices:   {prices}",
                f"  secrets:  its own, kept in {DEV_FILE}{ignoring}",
                f"  user token ({DEV_USER}, valid 24 h):",
                f"    {user}",
                f"  admin token ({DEV_ADMIN}, scope {ADMIN_SCOPE}, valid 24 h):",
                f"    {admin}",
                "  more tokens, from another shell in this folder:",
                "    tokenplans token --dev alice        (--admin for an admin)",
                "  try:",
                f"    {curl}",
                "  payments: offline gateway; to pay an order from another shell in this folder:",
                "    tokenplans dev pay ORDER_ID",
                "",
            ]
        ),
        flush=True,
    )


def _dev_portal_link(settings: Settings, url: str) -> str | None:
    """A link that opens the usage page as the dev user, valid as long as its token."""
    secret = portal_secret(settings)
    if secret is None:  # pragma: no cover - dev_settings always gives a JWT secret
        return None
    expires_at = datetime.now(UTC) + DEV_TOKEN_TTL
    return f"{url}/account/open?token={Signer(secret).sign('link', DEV_USER, expires_at)}"


def display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display only
