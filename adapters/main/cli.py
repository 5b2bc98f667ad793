"""The ``tokenplans`` command: serve the API, mint tokens, print the catalog, migrate,
sweep expired holds.

One ``_add_<command>`` function registers each subcommand and points it at its
``_<command>`` handler, which receives the parsed arguments and the settings (read once,
in :func:`main`). A bad setting ends the command with exit code 2 and one line on stderr
(plus a hint where one helps); an unreachable database with exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta

import attrs
from sqlalchemy.engine import make_url

from adapters.jwt_identity import JwtConfigError, mint_token
from adapters.razorpay import OfflineGateway
from adapters.sql import SqlAccountStore, make_engine, upgrade_schema
from tokenplans import (
    ADMIN_SCOPE,
    CatalogError,
    Plan,
    PlanCatalog,
    Principal,
    StorageUnavailableError,
    SystemClock,
    TokenService,
)

from .app import build_catalog, build_identity, offline_payment_secret
from .config import MIN_SECRET_BYTES, ConfigError, Settings

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 1
DEV_TOKEN_TTL = timedelta(hours=24)
DEV_USER = "dev-user"
DEV_ADMIN = "dev-admin"
_SIGNING_HINT = (
    "set TOKENPLANS_JWT_SECRET (at least 32 bytes) in the environment or in .env, e.g.\n"
    "  export TOKENPLANS_JWT_SECRET=\"$(python -c 'import secrets; "
    "print(secrets.token_urlsafe(48))')\"\n"
    "or run `tokenplans serve --dev` for local development"
)

Handler = Callable[[argparse.Namespace, Settings], int]


class CommandError(Exception):
    """A command cannot proceed; the message is printed as is, with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_CONFIG) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- serve ------------------------------------------------------------------------------


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve the HTTP API with uvicorn",
        description="Create or upgrade the schema, then serve the API with uvicorn.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--workers", type=_positive, default=1, help="processes (default 1)")
    parser.add_argument(
        "--dev",
        action="store_true",
        help="development mode: an ephemeral JWT secret and ready-made tokens",
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415 - only `serve` needs the server

    from .logs import uvicorn_log_config  # noqa: PLC0415 - it imports uvicorn too

    url = f"http://{_display_host(args.host)}:{args.port}"
    if args.dev:
        settings = _dev_settings(settings)
    elif problem := settings.secret_problem():
        raise CommandError(f"{problem}: refusing to serve.\n{_SIGNING_HINT}")
    build_catalog(settings)
    build_identity(settings)
    _check_port_free(args.host, args.port)
    _upgrade(settings)
    # Workers are separate processes that read the environment: hand them exactly
    # the settings validated here (the dev secret above all).
    os.environ.update(_environment(settings))
    if args.dev:
        _print_dev_banner(settings, url)
    uvicorn.run(
        "adapters.main.asgi:create",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        log_config=uvicorn_log_config(),
    )
    return 0


def _check_port_free(host: str, port: int) -> None:
    """Fail before printing tokens for a server that cannot start (uvicorn would only say
    so after start-up). Racy by nature; uvicorn's own bind error remains the last word."""
    try:
        with socket.create_server((host, port), reuse_port=False):
            pass
    except OSError:
        raise CommandError(
            f"cannot listen on {host}:{port}: is another server running there? "
            "Choose another port with --port"
        ) from None


def _dev_settings(settings: Settings) -> Settings:
    """Development mode: HS256 with the configured secret when it is good enough, else a
    fresh random one; no audience, issuer or public key, so the printed tokens work."""
    secret = settings.jwt_secret
    if settings.has_public_key_identity or not secret or len(secret.encode()) < MIN_SECRET_BYTES:
        secret = secrets.token_urlsafe(48)
    settings = attrs.evolve(
        settings,
        jwt_secret=secret,
        jwt_algorithms=("HS256",),
        jwt_public_key=None,
        jwt_jwks_url=None,
        jwt_audience=None,
        jwt_issuer=None,
    )
    # Spelled out, so the banner can hand it to `tokenplans dev pay` in another shell.
    return attrs.evolve(settings, offline_payment_secret=offline_payment_secret(settings))


def _environment(settings: Settings) -> dict[str, str]:
    """The variables that make a worker's ``Settings.from_env()`` equal ``settings``
    (empty strings override a ``.env`` value with "unset")."""
    return {
        "TOKENPLANS_DATABASE_URL": settings.database_url,
        "TOKENPLANS_JWT_SECRET": settings.jwt_secret or "",
        "TOKENPLANS_JWT_ALGORITHMS": ",".join(settings.jwt_algorithms),
        "TOKENPLANS_JWT_PUBLIC_KEY": settings.jwt_public_key or "",
        "TOKENPLANS_JWT_JWKS_URL": settings.jwt_jwks_url or "",
        "TOKENPLANS_JWT_AUDIENCE": settings.jwt_audience or "",
        "TOKENPLANS_JWT_ISSUER": settings.jwt_issuer or "",
        "TOKENPLANS_BASE_URL": settings.base_url or "",
        "TOKENPLANS_OFFLINE_PAYMENT_SECRET": settings.offline_payment_secret or "",
    }


def _print_dev_banner(settings: Settings, url: str) -> None:
    assert settings.jwt_secret is not None  # noqa: S101 - _dev_settings made one
    user = mint_token(DEV_USER, secret=settings.jwt_secret, ttl=DEV_TOKEN_TTL)
    admin = mint_token(
        DEV_ADMIN, secret=settings.jwt_secret, scopes=[ADMIN_SCOPE], ttl=DEV_TOKEN_TTL
    )
    curl = shlex.join(["curl", "-H", f"Authorization: Bearer {user}", f"{url}/api/tokens/usage"])
    print(
        "\n".join(
            [
                "tokenplans development server (do not use this mode in production)",
                f"  API:      {url}",
                f"  docs:     {url}/docs",
                f"  database: {_masked(settings.database_url)}",
                f"  user token ({DEV_USER}, valid 24 h):",
                f"    {user}",
                f"  admin token ({DEV_ADMIN}, scope {ADMIN_SCOPE}, valid 24 h):",
                f"    {admin}",
                "  try:",
                f"    {curl}",
                *_dev_payment_lines(settings),
                "",
            ]
        ),
        flush=True,
    )


def _dev_payment_lines(settings: Settings) -> list[str]:
    if settings.has_razorpay_keys:
        return [f"  payments: Razorpay ({settings.razorpay_key_id})"]
    return [
        "  payments: offline gateway (no Razorpay keys); to pay an order from another shell:",
        f"    export TOKENPLANS_OFFLINE_PAYMENT_SECRET={settings.offline_payment_secret}",
        "    tokenplans dev pay ORDER_ID",
    ]


# -- token ------------------------------------------------------------------------------


def _add_token(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "token",
        help="mint a bearer token signed with the configured secret",
        description="Print a JWT for SUBJECT signed with TOKENPLANS_JWT_SECRET.",
    )
    parser.add_argument("subject", help="the account's subject (the token's sub claim)")
    parser.add_argument("--admin", action="store_true", help=f"add the {ADMIN_SCOPE} scope")
    parser.add_argument(
        "--ttl", type=_positive, default=3600, help="seconds until it expires (default 3600)"
    )
    parser.set_defaults(handler=_token)


def _token(args: argparse.Namespace, settings: Settings) -> int:
    if settings.has_public_key_identity:
        raise CommandError(
            "tokens for a public key or JWKS are issued by your identity provider, not here"
        )
    if problem := settings.secret_problem():
        raise CommandError(f"{problem}: cannot sign a token.\n{_SIGNING_HINT}")
    assert settings.jwt_secret is not None  # noqa: S101 - secret_problem checked it
    token = mint_token(
        args.subject,
        secret=settings.jwt_secret,
        algorithm=settings.jwt_algorithms[0],
        scopes=[ADMIN_SCOPE] if args.admin else [],
        ttl=timedelta(seconds=args.ttl),
    )
    print(token)
    return 0


# -- plans ------------------------------------------------------------------------------


def _add_plans(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "plans",
        help="print the plan catalog",
        description="Print the catalog (TOKENPLANS_PLANS_FILE, or the built-in plans).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=_plans)


def _plans(args: argparse.Namespace, settings: Settings) -> int:
    catalog = build_catalog(settings)
    if args.json:
        print(json.dumps([_plan_json(plan, catalog) for plan in catalog], indent=2))
        return 0
    rows = [("id", "name", "price", "currency", "tokens", "term", "")]
    rows += [
        (
            plan.id,
            plan.name,
            str(plan.price),
            plan.currency,
            str(plan.tokens),
            "-" if plan.duration_days is None else f"{plan.duration_days} days",
            "(default)" if plan == catalog.default_plan else "",
        )
        for plan in catalog
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print("prices are in minor units (paise, cents)")
    return 0


def _plan_json(plan: Plan, catalog: PlanCatalog) -> dict[str, object]:
    fields = attrs.asdict(plan)
    fields["default"] = plan == catalog.default_plan
    return fields


# -- db ---------------------------------------------------------------------------------


def _add_db(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("db", help="database schema commands")
    actions = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade",
        help="create or migrate the tables",
        description="Create the tokenplans_ tables, or migrate them to the latest schema.",
    )
    upgrade.set_defaults(handler=_db_upgrade)


def _db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    _upgrade(settings)
    print(f"schema is up to date: {_masked(settings.database_url)}")
    return 0


# -- dev ------------------------------------------------------------------------------

_WEBHOOK_EVENTS = ("payment.captured", "order.paid", "payment.failed")


def _add_dev(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("dev", help="development helpers (offline payments)")
    actions = parser.add_subparsers(dest="dev_command", required=True, metavar="ACTION")
    pay = actions.add_parser(
        "pay",
        help="complete an order as Razorpay Checkout would, with the offline gateway",
        description=(
            "Sign a payment for ORDER_ID with the offline gateway's secret and print the "
            "JSON body for POST /api/payments/verify (pipe it to curl -d @-). With "
            "--webhook EVENT, print a curl command that delivers that signed webhook "
            "instead. Only for servers running without Razorpay keys."
        ),
    )
    pay.add_argument("order_id", metavar="ORDER_ID", help="the order_id from /api/payments/order")
    pay.add_argument("--payment-id", help="the Razorpay payment id to sign (default: random)")
    pay.add_argument(
        "--webhook",
        choices=_WEBHOOK_EVENTS,
        metavar="EVENT",
        help=f"print a signed webhook delivery instead: one of {', '.join(_WEBHOOK_EVENTS)}",
    )
    pay.add_argument("--url", help="the server's base URL (default http://127.0.0.1:8000)")
    pay.set_defaults(handler=_dev_pay)


def _dev_pay(args: argparse.Namespace, settings: Settings) -> int:
    if settings.has_razorpay_keys:
        raise CommandError(
            "Razorpay keys are configured: only Razorpay Checkout can sign those payments; "
            "`dev pay` signs for the offline gateway, used when no keys are set"
        )
    secret = offline_payment_secret(settings)
    if secret is None:
        raise CommandError(
            "no offline payment secret: export TOKENPLANS_OFFLINE_PAYMENT_SECRET as printed "
            "by `tokenplans serve --dev` (or set the server's TOKENPLANS_JWT_SECRET here too)"
        )
    gateway = OfflineGateway(secret)
    payment_id = args.payment_id or gateway.new_payment_id()
    url = (args.url or settings.base_url or "http://127.0.0.1:8000").rstrip("/")
    if args.webhook:
        event = {
            "entity": "event",
            "event": args.webhook,
            "contains": ["payment"],
            "payload": {
                "payment": {
                    "entity": {
                        "id": payment_id,
                        "entity": "payment",
                        "order_id": args.order_id,
                        "status": "failed" if args.webhook == "payment.failed" else "captured",
                    }
                }
            },
        }
        body = json.dumps(event, separators=(",", ":"))
        command = [
            "curl",
            "-sS",
            "-H",
            "Content-Type: application/json",
            "-H",
            f"X-Razorpay-Signature: {gateway.sign_webhook(body.encode())}",
            "-H",
            f"X-Razorpay-Event-Id: evt_{secrets.token_hex(7)}",
            "--data-raw",
            body,
            f"{url}/api/payments/webhook",
        ]
        print(shlex.join(command))
        return 0
    verify = {
        "razorpay_order_id": args.order_id,
        "razorpay_payment_id": payment_id,
        "razorpay_signature": gateway.sign_payment(args.order_id, payment_id),
    }
    print(json.dumps(verify))
    if not sys.stdout.isatty():
        return 0  # piped, as intended: the hint below would only clutter the terminal
    print(
        "POST this to /api/payments/verify with the order owner's token, e.g.\n"
        f"  tokenplans dev pay {shlex.quote(args.order_id)} | curl -H 'Authorization: Bearer "
        f"$TOKEN' -H 'Content-Type: application/json' -d @- {url}/api/payments/verify",
        file=sys.stderr,
    )
    return 0


# -- holds ------------------------------------------------------------------------------


def _add_holds(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("holds", help="hold maintenance")
    actions = parser.add_subparsers(dest="holds_command", required=True, metavar="ACTION")
    sweep = actions.add_parser(
        "sweep",
        help="write the expiries of holds nobody touched since they expired",
        description=(
            "Find the accounts with open holds past their expiry (one indexed query) and "
            "write their expiries through the normal update loop. Never needed for "
            "correctness (an expired hold frees its tokens at once for every read, and "
            "the account's next change writes it); it tidies accounts nobody touches."
        ),
    )
    sweep.add_argument("--batch", type=_positive, default=1000, help="accounts per query")
    sweep.set_defaults(handler=_holds_sweep)


def _holds_sweep(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        service = TokenService(SqlAccountStore(engine), build_catalog(settings), SystemClock())
        sweeper = Principal("tokenplans-holds-sweep", frozenset({ADMIN_SCOPE}))  # type: ignore[arg-type]
        swept = 0
        while len(batch := service.sweep_expired_holds(sweeper, limit=args.batch)):
            swept += len(batch)
            if len(batch) < args.batch:
                break
    finally:
        engine.dispose()
    print(f"swept expired holds of {swept} account(s)")
    return 0


# -- the command ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``tokenplans`` argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="tokenplans",
        description="Subscription plans and per-user token quotas: server and tools.",
        epilog="Configuration comes from TOKENPLANS_* environment variables and .env.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_token(commands)
    _add_plans(commands)
    _add_db(commands)
    _add_dev(commands)
    _add_holds(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args, Settings.from_env())
    except CommandError as error:
        return _fail(str(error), error.exit_code)
    except (ConfigError, CatalogError) as error:
        return _fail(str(error), EXIT_CONFIG)
    except JwtConfigError as error:
        return _fail(f"JWT settings: {error}", EXIT_CONFIG)
    except StorageUnavailableError as error:
        return _fail(f"database unavailable: {error}", EXIT_UNAVAILABLE)


def _fail(message: str, exit_code: int) -> int:
    print(f"tokenplans: error: {message}", file=sys.stderr)
    return exit_code


def _upgrade(settings: Settings) -> None:
    try:
        upgrade_schema(settings.database_url)
    except StorageUnavailableError:
        raise
    except Exception as error:  # a malformed URL, a missing driver...
        raise ConfigError(f"database URL {_masked(settings.database_url)}: {error}") from None


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display only


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not positive")
    return number


if __name__ == "__main__":
    sys.exit(main())
