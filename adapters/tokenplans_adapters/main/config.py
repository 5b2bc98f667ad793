"""Settings, read once from the environment and a ``.env`` file.

Every setting has a ``TOKENPLANS_*`` name; the original service's names (``DATABASE_URL``,
``JWT_SECRET``, ``JWT_ALGORITHM``, ``API_BASE_URL``) work too, and the ``TOKENPLANS_*``
name wins when both are set. A variable in the process environment wins over the same
variable in ``.env``. Empty values count as unset.

To add a setting: a field on :class:`Settings` (secrets with ``repr=_hidden``), its line
in ``Settings.from_env``, and its row in the README's configuration table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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
)
from tokenplans_adapters.razorpay import DEFAULT_API_URL as DEFAULT_RAZORPAY_API_URL

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
class Settings:
    """Everything the composition root needs, typed; build with :meth:`from_env`."""

    # -- storage
    database_url: str = DEFAULT_DATABASE_URL
    # A PostgreSQL or MySQL/MariaDB pool per process (None: the engine's default for the
    # backend); SQLite's pool is sized to the server's threads and ignores both.
    db_pool_size: int | None = None
    db_max_overflow: int | None = None
    # -- identity (JWT)
    jwt_secret: str | None = attrs.field(default=None, repr=_hidden)
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_public_key: str | None = attrs.field(default=None, repr=False)
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_require_exp: bool = True
    # -- HTTP
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    base_url: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_timeout_seconds: int = DEFAULT_BODY_TIMEOUT_SECONDS
    max_concurrent_per_subject: int = 0  # 0: no limit
    # -- catalog
    plans_file: Path | None = None
    # -- pricing model calls (neither: one credit per counted token)
    price_book: Path | None = None
    prices: str | None = None  # GENAI_PRICES, with credits_per_usd
    credits_per_usd: str | None = None
    priced_models: tuple[str, ...] = ()  # the genai-prices models GET /api/pricing shows
    # -- payments (Razorpay; without keys, the offline gateway stands in)
    razorpay_key_id: str | None = None
    razorpay_key_secret: str | None = attrs.field(default=None, repr=_hidden)
    razorpay_webhook_secret: str | None = attrs.field(default=None, repr=_hidden)
    razorpay_previous_webhook_secret: str | None = attrs.field(default=None, repr=_hidden)
    razorpay_api_url: str = DEFAULT_RAZORPAY_API_URL
    offline_payment_secret: str | None = attrs.field(default=None, repr=_hidden)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        env_file: str | Path | None = ".env",
    ) -> Settings:
        """Settings from ``environ`` (default ``os.environ``) over ``env_file`` (if it
        exists; ``None`` reads no file)."""
        values = _Values(_merge(os.environ if environ is None else environ, env_file))
        algorithms = values.get("TOKENPLANS_JWT_ALGORITHMS", "JWT_ALGORITHM")
        return cls(
            database_url=values.get("TOKENPLANS_DATABASE_URL", "DATABASE_URL")
            or DEFAULT_DATABASE_URL,
            db_pool_size=values.integer("TOKENPLANS_DB_POOL_SIZE", None),
            db_max_overflow=values.integer("TOKENPLANS_DB_MAX_OVERFLOW", None, minimum=0),
            jwt_secret=values.get("TOKENPLANS_JWT_SECRET", "JWT_SECRET"),
            jwt_algorithms=_csv(algorithms) if algorithms else ("HS256",),
            jwt_public_key=values.get("TOKENPLANS_JWT_PUBLIC_KEY"),
            jwt_jwks_url=values.get("TOKENPLANS_JWT_JWKS_URL"),
            jwt_audience=values.get("TOKENPLANS_JWT_AUDIENCE"),
            jwt_issuer=values.get("TOKENPLANS_JWT_ISSUER"),
            jwt_require_exp=values.boolean("TOKENPLANS_JWT_REQUIRE_EXP", default=True),
            cors_origins=_csv(
                values.get("TOKENPLANS_CORS_ORIGINS") or ",".join(DEFAULT_CORS_ORIGINS)
            ),
            base_url=values.get("TOKENPLANS_BASE_URL", "API_BASE_URL"),
            max_body_bytes=values.integer("TOKENPLANS_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            body_timeout_seconds=values.integer(
                "TOKENPLANS_BODY_TIMEOUT_SECONDS", DEFAULT_BODY_TIMEOUT_SECONDS
            ),
            max_concurrent_per_subject=values.integer(
                "TOKENPLANS_MAX_CONCURRENT_PER_SUBJECT", 0, minimum=0
            ),
            plans_file=_path(values.get("TOKENPLANS_PLANS_FILE")),
            **_pricing(values),
            razorpay_key_id=values.get("TOKENPLANS_RAZORPAY_KEY_ID", "RAZORPAY_KEY_ID"),
            razorpay_key_secret=values.get("TOKENPLANS_RAZORPAY_KEY_SECRET", "RAZORPAY_KEY_SECRET"),
            razorpay_webhook_secret=values.get(
                "TOKENPLANS_RAZORPAY_WEBHOOK_SECRET", "RAZORPAY_WEBHOOK_SECRET"
            ),
            razorpay_previous_webhook_secret=values.get(
                "TOKENPLANS_RAZORPAY_PREVIOUS_WEBHOOK_SECRET"
            ),
            razorpay_api_url=values.get("TOKENPLANS_RAZORPAY_API_URL", "RAZORPAY_API_URL")
            or DEFAULT_RAZORPAY_API_URL,
            offline_payment_secret=values.get("TOKENPLANS_OFFLINE_PAYMENT_SECRET"),
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


def _pricing(values: _Values) -> dict[str, Any]:
    """The pricing settings, checked for consistency (the book's content is checked when
    the composition root loads it): a price book or the genai-prices table, not both."""
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
    return {
        "price_book": _path(book),
        "prices": prices,
        "credits_per_usd": credits_per_usd,
        "priced_models": _csv(models or ""),
    }


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
