"""The ``tokenplans`` command: serve the API, mint tokens, print the catalog, migrate,
sweep expired holds.

One ``_add_<command>`` function registers each subcommand and points it at its
``_<command>`` handler, which receives the parsed arguments and the settings (read once,
in :func:`main`). A mistake on the command line or a bad setting ends the command with
exit code 2 and one line on stderr (plus a hint where one helps); an unreachable database
with exit code 1. Development mode's secrets are in :mod:`tokenplans_adapters.main.dev`.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import multiprocessing
import os
import shlex
import socket
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from typing import NoReturn

import attrs
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from tokenplans import (
    ADMIN_SCOPE,
    CatalogError,
    InvalidRequestError,
    PaymentGateway,
    PlanCatalog,
    PriceBookError,
    Pricer,
    Principal,
    StorageUnavailableError,
    SystemClock,
    TokenService,
    check_subject,
    is_storable_text,
)
from tokenplans_adapters.jwt_identity import JwtConfigError, mint_token
from tokenplans_adapters.razorpay import WEBHOOK_EVENTS, OfflineGateway
from tokenplans_adapters.sql import SqlAccountStore, metadata, upgrade_schema
from tokenplans_adapters.sql.migrate import VERSION_TABLE, current_revisions

from .app import (
    build_catalog,
    build_engine,
    build_gateway,
    build_identity,
    build_pricer,
    closer_of,
    offline_payment_secret,
    pool_limits,
)
from .config import ConfigError, Settings
from .dev import DEV_FILE, dev_secrets_for, dev_settings, ignored_in_dev, load_dev_secrets

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 1
MAX_PORT = 65535
WORKER_START_TIMEOUT_S = 60
MAX_TTL_SECONDS = 10 * 366 * 24 * 3600  # ten years: far enough, and no date overflow
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


def _add_serve(commands: argparse._SubParsersAction[_Parser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve the HTTP API with uvicorn",
        description="Create or upgrade the schema, then serve the API with uvicorn.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=_bounded(1, MAX_PORT), default=8000, help="TCP port (default 8000)"
    )
    parser.add_argument("--workers", type=_bounded(1), default=1, help="processes (default 1)")
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

    from .logs import uvicorn_log_config  # noqa: PLC0415 - it imports uvicorn too

    url = f"http://{_display_host(args.host)}:{args.port}"
    build_catalog(settings)
    pricer = build_pricer(settings)
    if not args.dev:
        if problem := settings.secret_problem():
            raise CommandError(f"{problem}: refusing to serve.\n{_SIGNING_HINT}")
        build_identity(settings)
        _close(build_gateway(settings))
    _check_can_listen(args.host, args.port)
    ignored: list[str] = []
    if args.dev:
        ignored = ignored_in_dev(settings)
        settings = dev_settings(settings, dev_secrets_for(url))
    _upgrade_apart(settings)
    # Workers are separate processes that read the environment: hand them exactly
    # the settings validated here (the dev secrets above all).
    os.environ.update(settings.environment())
    connections = _connections(settings, args.workers)
    if args.dev:
        _print_dev_banner(settings, url, ignored, connections, _prices(settings, pricer))
    else:
        _warn_about_payments(settings)
        if connections:
            _say(f"database {_masked(settings.database_url)}: {connections}")
    uvicorn.run(
        "tokenplans_adapters.main.asgi:create",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # uvicorn restarts a worker that is not up within this many seconds (5 by default):
        # importing the app takes longer than that on a loaded machine, and a too-eager
        # supervisor then kills every worker as it starts.
        timeout_worker_healthcheck=WORKER_START_TIMEOUT_S,
        log_level="info",
        log_config=uvicorn_log_config(),
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
    """Say how payments will run when it is not with Razorpay and webhooks both."""
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
    _say(f"warning: {message}")


def _say(message: str) -> None:
    print(f"tokenplans: {message}", file=sys.stderr, flush=True)


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
    curl = shlex.join(["curl", "-H", f"Authorization: Bearer {user}", f"{url}/api/tokens/usage"])
    ignoring = f" (ignoring {', '.join(ignored)})" if ignored else ""
    print(
        "\n".join(
            [
                "tokenplans development server (do not use this mode in production)",
                f"  API:      {url}",
                f"  docs:     {url}/docs",
                f"  database: {_masked(settings.database_url)}",
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


# -- token ------------------------------------------------------------------------------


def _add_token(commands: argparse._SubParsersAction[_Parser]) -> None:
    parser = commands.add_parser(
        "token",
        help="mint a bearer token signed with the configured secret",
        description=(
            "Print a JWT for SUBJECT signed with TOKENPLANS_JWT_SECRET, or with --dev for "
            f"the `tokenplans serve --dev` server of this folder (its {DEV_FILE})."
        ),
    )
    parser.add_argument("subject", help="the account's subject (the token's sub claim)")
    parser.add_argument("--admin", action="store_true", help=f"add the {ADMIN_SCOPE} scope")
    parser.add_argument(
        "--ttl",
        type=_bounded(1, MAX_TTL_SECONDS),
        default=3600,
        help="seconds until it expires (default 3600)",
    )
    parser.add_argument(
        "--dev", action="store_true", help="sign for the development server of this folder"
    )
    parser.set_defaults(handler=_token)


def _token(args: argparse.Namespace, settings: Settings) -> int:
    try:
        subject = check_subject(args.subject)
    except InvalidRequestError as error:
        raise CommandError(f"SUBJECT {args.subject!r}: {error}; the server refuses it") from None
    if args.dev:
        dev = load_dev_secrets()
        if dev is None:
            raise CommandError(
                f"no development server has run in this folder (no {DEV_FILE}): start "
                "`tokenplans serve --dev` here first, or run this command in its folder"
            )
        settings = dev_settings(settings, dev)
    elif settings.has_public_key_identity:
        raise CommandError(
            "tokens for a public key or JWKS are issued by your identity provider, not here"
        )
    if problem := settings.secret_problem():
        raise CommandError(f"{problem}: cannot sign a token.\n{_SIGNING_HINT}")
    assert settings.jwt_secret is not None  # noqa: S101 - secret_problem checked it
    token = mint_token(
        subject,
        secret=settings.jwt_secret,
        algorithm=settings.jwt_algorithms[0],
        scopes=[ADMIN_SCOPE] if args.admin else [],
        ttl=timedelta(seconds=args.ttl),
    )
    print(token)
    return 0


# -- plans ------------------------------------------------------------------------------


def _add_plans(commands: argparse._SubParsersAction[_Parser]) -> None:
    parser = commands.add_parser(
        "plans",
        help="print the plan catalog",
        description=(
            "Print the catalog (TOKENPLANS_PLANS_FILE, or the built-in plans) as a table, "
            "or as a JSON or TOML plan file that TOKENPLANS_PLANS_FILE accepts."
        ),
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "toml"),
        default="table",
        help="table (default), or a plan file: json or toml",
    )
    parser.add_argument(
        "--json", action="store_const", const="json", dest="format", help="--format json"
    )
    parser.set_defaults(handler=_plans)


def _plans(args: argparse.Namespace, settings: Settings) -> int:
    catalog = build_catalog(settings)
    if args.format == "table":
        _print_table(catalog)
    else:
        print(render_plan_file(catalog, args.format), end="")
    return 0


def render_plan_file(catalog: PlanCatalog, file_format: str) -> str:
    """``catalog`` as the text of a ``.json`` or ``.toml`` plan file."""
    if file_format == "json":
        return json.dumps(plan_file(catalog), indent=2) + "\n"
    return _toml(catalog)


def plan_file(catalog: PlanCatalog) -> dict[str, dict[str, object]]:
    """``catalog`` as a plan file: ``{plan_id: fields}`` in rank order (lowest first).
    Rank and default are implied: the order is the rank, and the default is the plan
    with price 0 and no ``duration_days``."""
    return {
        plan.id: {
            "name": plan.name,
            "price": plan.price,
            "currency": plan.currency,
            "tokens": plan.tokens,
            "duration_days": plan.duration_days,
        }
        for plan in catalog
    }


def _toml(catalog: PlanCatalog) -> str:
    """The plan file as TOML: one table per plan (plan ids are valid bare keys), with no
    ``duration_days`` line for a plan without a term (TOML has no null)."""
    tables = []
    for plan_id, fields in plan_file(catalog).items():
        lines = [f"[{plan_id}]"]
        for name, value in fields.items():
            if isinstance(value, str):
                lines.append(f"{name} = {_toml_string(value, plan_id)}")
            elif value is not None:
                lines.append(f"{name} = {value}")
        tables.append("\n".join(lines) + "\n")
    return "\n".join(tables)


_TOML_ESCAPES = {
    ord('"'): '\\"',
    ord("\\"): "\\\\",
    **{code: f"\\u{code:04X}" for code in [*range(ord(" ")), ord("\x7f")]},
}


def _toml_string(text: str, plan_id: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a JSON file's "\ud800"
        raise CommandError(
            f"plan {plan_id!r}: its name cannot be written as TOML; use --format json"
        ) from None
    escaped = text.translate(_TOML_ESCAPES)
    return f'"{escaped}"'


def _print_table(catalog: PlanCatalog) -> None:
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


# -- db ---------------------------------------------------------------------------------


def _add_db(commands: argparse._SubParsersAction[_Parser]) -> None:
    parser = commands.add_parser("db", help="database schema commands")
    actions = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade",
        help="create or migrate the tables",
        description="Create the tokenplans_ tables, or migrate them to the latest schema.",
    )
    upgrade.set_defaults(handler=_db_upgrade)


def _db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    before, after = _upgrade(settings)
    database = _masked(settings.database_url)
    if before is None:
        tables = ", ".join([*metadata.tables, VERSION_TABLE])
        print(f"created the schema at revision {after} in {database}: tables {tables}")
    elif before != after:
        print(f"migrated the schema from revision {before} to {after} in {database}")
    else:
        print(f"schema is up to date (revision {after}): {database}")
    return 0


# -- dev ------------------------------------------------------------------------------


def _add_dev(commands: argparse._SubParsersAction[_Parser]) -> None:
    parser = commands.add_parser("dev", help="development helpers (offline payments)")
    actions = parser.add_subparsers(dest="dev_command", required=True, metavar="ACTION")
    pay = actions.add_parser(
        "pay",
        help="complete an order as Razorpay Checkout would, with the offline gateway",
        description=(
            "Sign a payment for ORDER_ID with the offline gateway's secret and print the "
            "JSON body for POST /api/payments/verify (pipe it to curl -d @-). With "
            "--webhook EVENT, print a curl command that delivers that signed webhook "
            "instead. Signs for the `tokenplans serve --dev` server of this folder (its "
            f"{DEV_FILE}) when there is one, else for a server running the offline gateway "
            "with this configuration (no Razorpay keys)."
        ),
    )
    pay.add_argument("order_id", metavar="ORDER_ID", help="the order_id from /api/payments/order")
    pay.add_argument("--payment-id", help="the Razorpay payment id to sign (default: random)")
    pay.add_argument(
        "--webhook",
        choices=WEBHOOK_EVENTS,
        metavar="EVENT",
        help=f"print a signed webhook delivery instead: one of {', '.join(WEBHOOK_EVENTS)}",
    )
    pay.add_argument(
        "--url", help="the server's base URL (default: the dev server's, or http://127.0.0.1:8000)"
    )
    pay.set_defaults(handler=_dev_pay)


def _dev_pay(args: argparse.Namespace, settings: Settings) -> int:
    gateway, url = _offline_gateway(settings, webhook=bool(args.webhook))
    payment_id = args.payment_id or gateway.new_payment_id()
    url = (args.url or url).rstrip("/")
    if args.webhook:
        body, headers = gateway.webhook_delivery(
            args.webhook, order_id=args.order_id, payment_id=payment_id
        )
        command = ["curl", "-sS", "-H", "Content-Type: application/json"]
        for name, value in headers.items():  # capitalised as Razorpay's docs write them
            command += ["-H", f"{name.title()}: {value}"]
        command += ["--data-raw", body.decode(), f"{url}/api/payments/webhook"]
        print(shlex.join(command))
        return 0
    verify = gateway.checkout_proof(args.order_id, payment_id)
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


def _offline_gateway(settings: Settings, *, webhook: bool) -> tuple[OfflineGateway, str]:
    """The gateway ``dev pay`` signs with, and the server's default URL: the development
    server's, from its file, else the one this configuration makes."""
    dev = load_dev_secrets()
    if dev is not None:
        return OfflineGateway(dev.payment_secret), dev.api_url or "http://127.0.0.1:8000"
    if settings.has_razorpay_keys:
        raise CommandError(
            "Razorpay keys are configured: only Razorpay Checkout can sign those payments; "
            "`dev pay` signs for the offline gateway, used when no keys are set"
        )
    secret = offline_payment_secret(settings)
    if secret is None:
        raise CommandError(
            f"no offline payment secret: run this in the folder of `tokenplans serve --dev` "
            f"(it reads {DEV_FILE}), or configure the server's TOKENPLANS_JWT_SECRET or "
            "TOKENPLANS_OFFLINE_PAYMENT_SECRET here too"
        )
    if webhook and not settings.razorpay_webhook_secret:
        raise CommandError(
            "no RAZORPAY_WEBHOOK_SECRET: a server without one refuses every webhook; set the "
            "server's webhook secret here too"
        )
    webhook_secrets = [settings.razorpay_webhook_secret or ""][: int(webhook)]
    gateway = OfflineGateway(secret, webhook_secrets=webhook_secrets)
    return gateway, settings.base_url or "http://127.0.0.1:8000"


# -- holds ------------------------------------------------------------------------------


def _add_holds(commands: argparse._SubParsersAction[_Parser]) -> None:
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
    sweep.add_argument("--batch", type=_bounded(1), default=1000, help="accounts per query")
    sweep.set_defaults(handler=_holds_sweep)


def _holds_sweep(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    try:
        service = TokenService(SqlAccountStore(engine), build_catalog(settings), SystemClock())
        sweeper = Principal("tokenplans-holds-sweep", frozenset({ADMIN_SCOPE}))  # type: ignore[arg-type]
        swept, after = 0, None
        # Each batch starts after the last subject of the one before, so the sweep ends
        # even on an account whose expired holds it cannot close.
        while batch := service.sweep_expired_holds(sweeper, limit=args.batch, after=after):
            swept += len(batch)
            after = batch[-1]
            if len(batch) < args.batch:
                break
    finally:
        engine.dispose()
    print(f"swept expired holds of {swept} account(s)")
    return 0


# -- the command ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """A mistake on the command line is one line on stderr, saying where to read more,
    and exit code 2 (argparse's default prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``tokenplans`` argument parser, one subparser per command."""
    parser = _Parser(
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
    argv = sys.argv[1:] if argv is None else argv
    if garbled := [argument for argument in argv if not is_storable_text(argument)]:
        return _fail(f"argument {garbled[0]!r} is not valid UTF-8 text", EXIT_CONFIG)
    args = build_parser().parse_args(argv)
    return _run(args.handler, args)


def _run(handler: Handler, args: argparse.Namespace) -> int:
    """``handler``'s exit code, or the one for the failure it raised, said in one line."""
    try:
        return handler(args, Settings.from_env())
    except CommandError as error:
        return _fail(str(error), error.exit_code)
    except (ConfigError, CatalogError, PriceBookError) as error:
        return _fail(str(error), EXIT_CONFIG)
    except JwtConfigError as error:
        return _fail(f"JWT settings: {error}", EXIT_CONFIG)
    except StorageUnavailableError as error:
        return _fail(f"database unavailable: {error}", EXIT_UNAVAILABLE)
    except BrokenPipeError:  # `tokenplans plans | head -1`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_UNAVAILABLE


def _fail(message: str, exit_code: int) -> int:
    print(f"tokenplans: error: {message}", file=sys.stderr)
    return exit_code


def _upgrade(settings: Settings) -> tuple[str | None, str | None]:
    """Create or migrate the schema; the revisions before (``None``: no schema yet) and
    after."""
    engine = _engine(settings)
    try:
        before = _revision(engine)
        upgrade_schema(engine)
        return before, _revision(engine)
    finally:
        engine.dispose()


def _upgrade_apart(settings: Settings) -> None:
    """:func:`_upgrade` in a short-lived process of its own. With one worker, uvicorn
    serves in this very process, which should not keep Alembic and Mako (about 10 MiB)
    for the rest of its life after one use; a failure is raised here all the same."""
    spawned = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawned) as upgrader:
        upgrader.submit(_upgrade, settings).result()


def _engine(settings: Settings) -> Engine:
    url = settings.database_url
    try:
        return build_engine(settings)
    except ConfigError:
        raise
    except ModuleNotFoundError as error:
        raise ConfigError(f"database URL {_masked(url)}: {_missing_driver(url, error)}") from None
    except sa_exc.NoSuchModuleError:
        scheme = url.partition(":")[0]
        raise ConfigError(
            f"database URL {_masked(url)}: unknown scheme {scheme!r}; the URL forms are "
            f"{_URL_FORMS}"
        ) from None
    except Exception as error:  # a malformed URL, an unknown scheme...
        raise ConfigError(
            f"database URL {_masked(url)}: {error}; the URL forms are {_URL_FORMS}"
        ) from None


_URL_FORMS = (
    "sqlite:///path/to/file.sqlite3, postgresql+psycopg://user:pw@host/db and "
    "mysql+pymysql://user:pw@host/db"
)


@attrs.frozen
class _Driver:
    """The driver tokenplans supports for a database."""

    module: str  # what it imports as
    requirement: str  # what installs it from the package index (as tokenplans' extra has it)
    extra: str  # tokenplans' extra that installs it
    drivername: str  # the URL scheme that uses it


_PSYCOPG = _Driver("psycopg", "psycopg[binary]", "postgres", "postgresql+psycopg")
_PYMYSQL = _Driver("pymysql", "pymysql", "mysql", "mysql+pymysql")
#: The driver module a URL's scheme loads -> ours for that database.
_DRIVERS = {"psycopg": _PSYCOPG, "psycopg2": _PSYCOPG, "pymysql": _PYMYSQL, "MySQLdb": _PYMYSQL}


def _missing_driver(url: str, error: ModuleNotFoundError) -> str:
    """What to do about ``url``'s driver not being installed: install ours (named as the
    package index knows it: tokenplans itself is not there), or, when ours is installed
    and the URL asks for another (``mysql://`` means MySQLdb), use our scheme."""
    driver = _DRIVERS.get(error.name or "")
    if driver is None:
        return f"its driver is not installed ({error})"
    if error.name != driver.module and _installed(driver.module):
        ours = make_url(url).set(drivername=driver.drivername)
        return (
            f"its driver {error.name!r} is not installed, but {driver.module!r} is installed: "
            f"use a {driver.drivername}:// URL, i.e. {ours.render_as_string(hide_password=True)}"
        )
    return (
        f"its driver {error.name!r} is not installed: pip install '{driver.requirement}' "
        f"(tokenplans' {driver.extra} extra has it) and use a {driver.drivername}:// URL"
    )


def _installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return max(current_revisions(conn), default=None)  # one line of migrations
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as error:
        raise StorageUnavailableError(f"cannot read the schema: {error.orig}") from error


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display only


def _bounded(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high`` (no limit when ``None``)."""

    def integer(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value[:40]!r} is not an integer") from None
        if number < low or (high is not None and number > high):
            limits = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"{value!r} is out of range: give a number {limits}")
        return number

    return integer


if __name__ == "__main__":
    sys.exit(main())
