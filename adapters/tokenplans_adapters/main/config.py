"""Settings, read once from the environment and a ``.env`` file.

Every setting has a ``TOKENPLANS_*`` name; the original service's names (``DATABASE_URL``,
``JWT_SECRET``, ``JWT_ALGORITHM``, ``API_BASE_URL``, ``RAZORPAY_*``) work too, and the
first name a field declares wins when several are set. A variable in the process
environment wins over the same variable in ``.env``. Empty values count as unset.

Each setting is declared once, as a field of :class:`Settings` made by :func:`setting`:
its variable names and its kind (text, integer, boolean, comma-separated list, path).
:meth:`Settings.from_env` reads every field by its declaration, and
:meth:`Settings.environment` writes the variables back for worker processes. To add a
setting: one field here, and its row in docs/configuration.md's table (a test checks
that the two agree).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, overload

import attrs
from dotenv import dotenv_values

# The HTTP and Razorpay defaults are the adapters' own, so a setting left unset means
# exactly what the adapter does when it is given nothing.
from tokenplans_adapters.http.app import (
    DEFAULT_BODY_TIMEOUT_SECONDS,
    DEFAULT_CORS_ORIGINS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_SLOW_REQUEST_MS,
)
from tokenplans_adapters.http.readiness import DEFAULT_READINESS_TIMEOUT_SECONDS
from tokenplans_adapters.portal import DEFAULT_LINK_TTL_SECONDS, DEFAULT_SESSION_TTL_SECONDS
from tokenplans_adapters.razorpay import DEFAULT_API_URL as DEFAULT_RAZORPAY_API_URL
from tokenplans_adapters.sql.engine import (
    DEFAULT_CALL_TIMEOUT_S,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_KEEPALIVE_S,
    DEFAULT_SQLITE_SYNCHRONOUS,
)
from tokenplans_adapters.stripe import DEFAULT_API_URL as DEFAULT_STRIPE_API_URL
from tokenplans_adapters.webhooks import DEFAULT_RETRY_SCHEDULE, DeliverySettings
from tokenplans_adapters.webhooks.worker import parse_schedule

DEFAULT_DATABASE_URL = "sqlite:///./tokenplans.sqlite3"
MIN_SECRET_BYTES = 32
MAX_INTEGER_DIGITS = 18
#: ``TOKENPLANS_PRICES``' one value: the genai-prices package's table.
GENAI_PRICES = "genai-prices"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _hidden(value: object) -> str:
    return "None" if value is None else "'***'"


@attrs.frozen
class Kind:
    """How a setting's text becomes its value (``read``, given the variables, the
    setting's names and its default) and back (``write``: the text that reads as the
    value again)."""

    read: Callable[[_Values, tuple[str, ...], Any], Any]
    write: Callable[[Any], str]


@attrs.frozen
class Variables:
    """A setting's declaration: its variable names, the first one winning, and its kind."""

    names: tuple[str, ...]
    kind: Kind


def _read_text(values: _Values, names: tuple[str, ...], default: Any) -> Any:
    return values.get(*names) or default


def _read_csv(values: _Values, names: tuple[str, ...], default: Any) -> Any:
    text = values.get(*names)
    return _csv(text) if text else default


def _read_path(values: _Values, names: tuple[str, ...], default: Any) -> Any:
    return _path(values.get(*names)) or default


def _read_boolean(values: _Values, names: tuple[str, ...], default: Any) -> Any:
    return values.boolean(names[0], default=default)


def _integer(minimum: int = 1) -> Kind:
    def read(values: _Values, names: tuple[str, ...], default: Any) -> Any:
        return values.integer(names[0], default, minimum=minimum)

    return Kind(read, lambda value: "" if value is None else str(value))


def _read_percentages(values: _Values, names: tuple[str, ...], default: Any) -> Any:
    text = values.get(*names)
    if not text:
        return default
    parts = _csv(text)
    if not all(p.isascii() and p.isdecimal() and 1 <= int(p) <= 1000 for p in parts):  # noqa: PLR2004
        raise ConfigError(f"{names[0]} must be whole percentages 1-1000, comma-separated")
    return tuple(sorted({int(p) for p in parts}))


def _read_seconds(values: _Values, names: tuple[str, ...], default: Any) -> Any:
    text = values.get(*names)
    if not text:
        return default
    try:
        return parse_schedule(text)
    except ValueError as error:
        raise ConfigError(f"{names[0]}: {error}") from error


def _write_numbers(value: Any) -> str:
    return ",".join(f"{number:g}" for number in value)


TEXT = Kind(_read_text, lambda value: value or "")
PERCENTAGES = Kind(_read_percentages, _write_numbers)
SECONDS_LIST = Kind(_read_seconds, _write_numbers)
CSV = Kind(_read_csv, ",".join)
PATH = Kind(_read_path, lambda value: "" if value is None else str(value))
BOOLEAN = Kind(_read_boolean, lambda value: "true" if value else "false")
POSITIVE = _integer()
NATURAL = _integer(minimum=0)


def setting(*names: str, default: Any = None, kind: Kind = TEXT, secret: bool = False) -> Any:
    """A field of :class:`Settings` read from the variables ``names`` (the first one
    set wins) as ``kind``; a ``secret`` never shows in a repr."""
    return attrs.field(
        default=default,
        repr=_hidden if secret else True,
        metadata={Variables: Variables(names, kind)},
    )


@attrs.frozen
class Settings:
    """Everything the composition root needs, typed; build with :meth:`from_env`."""

    # -- storage
    database_url: str = setting(
        "TOKENPLANS_DATABASE_URL", "DATABASE_URL", default=DEFAULT_DATABASE_URL
    )
    # The connection pool per process (None: the engine's default for the backend, 8 on
    # SQLite), which is also how many threads run storage calls; SQLite has no overflow.
    db_pool_size: int | None = setting("TOKENPLANS_DB_POOL_SIZE", kind=POSITIVE)
    db_max_overflow: int | None = setting("TOKENPLANS_DB_MAX_OVERFLOW", kind=NATURAL)
    # Bounded waits on PostgreSQL and MySQL/MariaDB, in seconds: opening a connection, one
    # database call's answer (0: no deadline), an idle connection's first keepalive probe.
    db_connect_timeout_seconds: int = setting(
        "TOKENPLANS_DB_CONNECT_TIMEOUT_SECONDS", default=DEFAULT_CONNECT_TIMEOUT_S, kind=POSITIVE
    )
    db_call_timeout_seconds: int = setting(
        "TOKENPLANS_DB_CALL_TIMEOUT_SECONDS", default=DEFAULT_CALL_TIMEOUT_S, kind=NATURAL
    )
    db_keepalive_seconds: int = setting(
        "TOKENPLANS_DB_KEEPALIVE_SECONDS", default=DEFAULT_KEEPALIVE_S, kind=POSITIVE
    )
    # How long GET /api/health/ready waits for the database before answering 503.
    readiness_timeout_seconds: int = setting(
        "TOKENPLANS_READINESS_TIMEOUT_SECONDS",
        default=DEFAULT_READINESS_TIMEOUT_SECONDS,
        kind=POSITIVE,
    )
    # SQLite's PRAGMA synchronous: FULL survives power loss; NORMAL only a crash.
    sqlite_synchronous: str = setting(
        "TOKENPLANS_SQLITE_SYNCHRONOUS", default=DEFAULT_SQLITE_SYNCHRONOUS
    )
    # -- identity (JWT)
    jwt_secret: str | None = setting("TOKENPLANS_JWT_SECRET", "JWT_SECRET", secret=True)
    jwt_algorithms: tuple[str, ...] = setting(
        "TOKENPLANS_JWT_ALGORITHMS", "JWT_ALGORITHM", default=("HS256",), kind=CSV
    )
    jwt_public_key: str | None = setting("TOKENPLANS_JWT_PUBLIC_KEY", secret=True)
    jwt_jwks_url: str | None = setting("TOKENPLANS_JWT_JWKS_URL")
    jwt_audience: str | None = setting("TOKENPLANS_JWT_AUDIENCE")
    jwt_issuer: str | None = setting("TOKENPLANS_JWT_ISSUER")
    jwt_require_exp: bool = setting("TOKENPLANS_JWT_REQUIRE_EXP", default=True, kind=BOOLEAN)
    # -- HTTP
    cors_origins: tuple[str, ...] = setting(
        "TOKENPLANS_CORS_ORIGINS", default=DEFAULT_CORS_ORIGINS, kind=CSV
    )
    base_url: str | None = setting("TOKENPLANS_BASE_URL", "API_BASE_URL")
    max_body_bytes: int = setting(
        "TOKENPLANS_MAX_BODY_BYTES", default=DEFAULT_MAX_BODY_BYTES, kind=POSITIVE
    )
    body_timeout_seconds: int = setting(
        "TOKENPLANS_BODY_TIMEOUT_SECONDS", default=DEFAULT_BODY_TIMEOUT_SECONDS, kind=POSITIVE
    )
    max_concurrent_per_subject: int = setting(  # 0: no limit
        "TOKENPLANS_MAX_CONCURRENT_PER_SUBJECT", default=0, kind=NATURAL
    )
    # -- the usage page (GET /account; docs/usage-page.md). Its secret signs links and
    # sessions; unset, one is derived from the JWT secret, and with neither the page is off.
    portal_secret: str | None = setting("TOKENPLANS_PORTAL_SECRET", secret=True)
    portal_link_ttl_seconds: int = setting(
        "TOKENPLANS_PORTAL_LINK_TTL_SECONDS", default=DEFAULT_LINK_TTL_SECONDS, kind=POSITIVE
    )
    portal_session_ttl_seconds: int = setting(
        "TOKENPLANS_PORTAL_SESSION_TTL_SECONDS",
        default=DEFAULT_SESSION_TTL_SECONDS,
        kind=POSITIVE,
    )
    # the origins that may embed the page in a frame (none: 'none', X-Frame-Options DENY)
    portal_frame_ancestors: tuple[str, ...] = setting(
        "TOKENPLANS_PORTAL_FRAME_ANCESTORS", default=(), kind=CSV
    )
    # the page's checkout pays offline orders itself (development: `serve --dev` sets it)
    portal_offline_payments: bool = setting(
        "TOKENPLANS_PORTAL_OFFLINE_PAYMENTS", default=False, kind=BOOLEAN
    )
    # uvicorn's line per request (off: errors and slow requests are logged instead).
    access_log: bool = setting("TOKENPLANS_ACCESS_LOG", default=False, kind=BOOLEAN)
    # A request taking this long or more is logged (0: none).
    slow_request_ms: int = setting(
        "TOKENPLANS_SLOW_REQUEST_MS", default=DEFAULT_SLOW_REQUEST_MS, kind=NATURAL
    )
    # -- catalog
    plans_file: Path | None = setting("TOKENPLANS_PLANS_FILE", kind=PATH)
    # -- pricing model calls (neither: one credit per counted token; see _check_pricing)
    price_book: Path | None = setting("TOKENPLANS_PRICE_BOOK", kind=PATH)
    prices: str | None = setting("TOKENPLANS_PRICES")  # GENAI_PRICES, with credits_per_usd
    credits_per_usd: str | None = setting("TOKENPLANS_CREDITS_PER_USD")
    # the genai-prices models GET /api/pricing shows
    priced_models: tuple[str, ...] = setting("TOKENPLANS_PRICED_MODELS", default=(), kind=CSV)
    # -- payments (Razorpay; without keys, the offline gateway stands in)
    razorpay_key_id: str | None = setting("TOKENPLANS_RAZORPAY_KEY_ID", "RAZORPAY_KEY_ID")
    razorpay_key_secret: str | None = setting(
        "TOKENPLANS_RAZORPAY_KEY_SECRET", "RAZORPAY_KEY_SECRET", secret=True
    )
    razorpay_webhook_secret: str | None = setting(
        "TOKENPLANS_RAZORPAY_WEBHOOK_SECRET", "RAZORPAY_WEBHOOK_SECRET", secret=True
    )
    razorpay_previous_webhook_secret: str | None = setting(
        "TOKENPLANS_RAZORPAY_PREVIOUS_WEBHOOK_SECRET", secret=True
    )
    razorpay_api_url: str = setting(
        "TOKENPLANS_RAZORPAY_API_URL", "RAZORPAY_API_URL", default=DEFAULT_RAZORPAY_API_URL
    )
    offline_payment_secret: str | None = setting("TOKENPLANS_OFFLINE_PAYMENT_SECRET", secret=True)
    # -- payments (Stripe, beside Razorpay or alone; see build_gateways)
    stripe_secret_key: str | None = setting(
        "TOKENPLANS_STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY", secret=True
    )
    stripe_webhook_secret: str | None = setting(
        "TOKENPLANS_STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET", secret=True
    )
    stripe_api_url: str = setting(
        "TOKENPLANS_STRIPE_API_URL", "STRIPE_API_URL", default=DEFAULT_STRIPE_API_URL
    )
    stripe_success_url: str | None = setting("TOKENPLANS_STRIPE_SUCCESS_URL")
    stripe_cancel_url: str | None = setting("TOKENPLANS_STRIPE_CANCEL_URL")
    # the offline Stripe stand-in (development; `serve --dev` turns it on)
    stripe_offline: bool = setting("TOKENPLANS_STRIPE_OFFLINE", default=False, kind=BOOLEAN)
    # events and webhooks (docs/events.md)
    event_thresholds: tuple[int, ...] = setting(
        "TOKENPLANS_EVENT_THRESHOLDS", default=(80, 100), kind=PERCENTAGES
    )
    webhook_worker: bool = setting("TOKENPLANS_WEBHOOK_WORKER", default=True, kind=BOOLEAN)
    webhook_allow_private_targets: bool = setting(
        "TOKENPLANS_WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False, kind=BOOLEAN
    )
    webhook_retry_schedule: tuple[float, ...] = setting(
        "TOKENPLANS_WEBHOOK_RETRY_SCHEDULE", default=DEFAULT_RETRY_SCHEDULE, kind=SECONDS_LIST
    )
    webhook_timeout_seconds: int = setting(
        "TOKENPLANS_WEBHOOK_TIMEOUT_SECONDS", default=10, kind=POSITIVE
    )
    webhook_disable_after_seconds: int = setting(
        "TOKENPLANS_WEBHOOK_DISABLE_AFTER_SECONDS", default=86400, kind=POSITIVE
    )

    # GET /metrics and the counting behind it, when the metrics extra is installed
    metrics: bool = setting("TOKENPLANS_METRICS", default=True, kind=BOOLEAN)
    # when set, GET /metrics answers only "Authorization: Bearer <this token>"
    metrics_token: str | None = setting("TOKENPLANS_METRICS_TOKEN", secret=True)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        env_file: str | Path | None = ".env",
    ) -> Settings:
        """Settings from ``environ`` (default ``os.environ``) over ``env_file`` (if it
        exists; ``None`` reads no file), each field read by its declaration."""
        values = _Values(_merge(os.environ if environ is None else environ, env_file))
        read: dict[str, Any] = {}
        for field, variables in declared():
            read[field.name] = variables.kind.read(values, variables.names, field.default)
            if field.name == "plans_file":  # the pricing settings come next: check them
                _check_pricing(values)
        return cls(**read)

    def environment(self) -> dict[str, str]:
        """The variables that make ``Settings.from_env()`` in another process (a server's
        worker) equal these settings: every setting under its first name, and its other
        names emptied (an empty variable overrides a ``.env`` value with "unset", so a
        value in ``.env`` cannot stand in for a setting left unset here)."""
        environment: dict[str, str] = {}
        for field, variables in declared():
            first, *others = variables.names
            environment |= dict.fromkeys(others, "")
            environment[first] = variables.kind.write(getattr(self, field.name))
        return environment

    @property
    def delivery(self) -> DeliverySettings:
        """How the webhook worker delivers, from the webhook settings."""
        return DeliverySettings(
            retry_schedule=self.webhook_retry_schedule,
            timeout_seconds=self.webhook_timeout_seconds,
            disable_after_seconds=self.webhook_disable_after_seconds,
            allow_private_targets=self.webhook_allow_private_targets,
        )

    @property
    def has_razorpay_keys(self) -> bool:
        """Razorpay is configured; otherwise the offline gateway stands in (development)."""
        return bool(self.razorpay_key_id or self.razorpay_key_secret)

    @property
    def has_public_key_identity(self) -> bool:
        """Tokens are verified by a public key or JWKS rather than a shared secret."""
        return bool(self.jwt_public_key or self.jwt_jwks_url)

    def secret_problem(self) -> str | None:
        """Why the JWT secret is unusable for serving, or ``None`` when it is fine."""
        if self.has_public_key_identity:
            return None
        if not self.jwt_secret:
            return "no JWT secret is configured"
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            return (
                f"the JWT secret is {len(self.jwt_secret.encode())} bytes; "
                f"at least {MIN_SECRET_BYTES} are needed"
            )
        return None


def declared() -> Iterator[tuple[attrs.Attribute[Any], Variables]]:
    """Each setting of :class:`Settings` with its declaration, in field order."""
    for field in attrs.fields(Settings):
        yield field, field.metadata[Variables]


def variable_names() -> list[str]:
    """Every variable :class:`Settings` reads, aliases included."""
    return [name for _field, variables in declared() for name in variables.names]


def _check_pricing(values: _Values) -> None:
    """The pricing settings are consistent (the book's content is checked when the
    composition root loads it): a price book or the genai-prices table, not both."""
    book = values.get("TOKENPLANS_PRICE_BOOK")
    prices = values.get("TOKENPLANS_PRICES")
    credits_per_usd = values.get("TOKENPLANS_CREDITS_PER_USD")
    models = values.get("TOKENPLANS_PRICED_MODELS")
    if book and prices:
        raise ConfigError(
            "TOKENPLANS_PRICE_BOOK and TOKENPLANS_PRICES are both set: choose one source of "
            "prices (a price book file, or TOKENPLANS_PRICES=genai-prices)"
        )
    if prices is not None and prices != GENAI_PRICES:
        raise ConfigError(f"TOKENPLANS_PRICES must be {GENAI_PRICES!r}, got {prices!r}")
    if prices and not credits_per_usd:
        raise ConfigError(
            "TOKENPLANS_PRICES=genai-prices needs TOKENPLANS_CREDITS_PER_USD: how many "
            'credits one US dollar buys (e.g. 1000, or "0.5")'
        )
    if not prices and (credits_per_usd or models):
        name = "TOKENPLANS_CREDITS_PER_USD" if credits_per_usd else "TOKENPLANS_PRICED_MODELS"
        raise ConfigError(f"{name} is set without TOKENPLANS_PRICES=genai-prices")


def _merge(environ: Mapping[str, str], env_file: str | Path | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update(
            {key: value for key, value in dotenv_values(env_file).items() if value is not None}
        )
    merged.update(environ)
    return merged


class _Values:
    """Typed look-ups over the merged variables; empty strings are unset."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def get(self, *names: str) -> str | None:
        for name in names:
            value = self._values.get(name, "").strip()
            if value:
                return value
        return None

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")

    @overload
    def integer(self, name: str, default: int, *, minimum: int = 1) -> int: ...
    @overload
    def integer(self, name: str, default: None, *, minimum: int = 1) -> int | None: ...
    def integer(self, name: str, default: int | None, *, minimum: int = 1) -> int | None:
        value = self.get(name)
        if value is None:
            return default
        # isascii: isdecimal alone admits other scripts' digits ("٣"), which int() reads;
        # the length keeps int() within its digit limit.
        digits = value.isascii() and value.isdecimal() and len(value) <= MAX_INTEGER_DIGITS
        if not digits or int(value) < minimum:
            kind = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
            raise ConfigError(f"{name} must be {kind}, got {value[:40]!r}")
        return int(value)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value).expanduser()
