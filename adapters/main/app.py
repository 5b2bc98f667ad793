"""The composition root: the one place that knows every adapter and wires them together.

``build_app(settings)`` turns :class:`~adapters.main.config.Settings` into the ASGI app;
the ``build_*`` helpers are separate so the CLI can validate each part (catalog, identity)
and report a bad setting in one line before a server starts.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette

from adapters.http import create_app
from adapters.jwt_identity import JwtIdentity
from adapters.sql import SqlAccountStore, make_engine
from tokenplans import PlanCatalog, SystemClock, TokenService

from .config import ConfigError, Settings


def build_catalog(settings: Settings) -> PlanCatalog:
    """The configured catalog file, or the reference's three plans. Raises
    :class:`tokenplans.CatalogError` naming the bad entry."""
    if settings.plans_file is None:
        return PlanCatalog.default()
    return PlanCatalog.from_file(settings.plans_file)


def build_identity(settings: Settings) -> JwtIdentity:
    """The JWT identity for the configured key. Raises
    :class:`adapters.jwt_identity.JwtConfigError` for an unusable configuration."""
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
    store = SqlAccountStore(make_engine(settings.database_url))
    service = TokenService(store, catalog, SystemClock())
    return create_app(
        service,
        identity,
        cors_origins=settings.cors_origins,
        max_body_bytes=settings.max_body_bytes,
        readiness=store.ping,
        base_url=settings.base_url or "",  # "": derived from each request
        title="tokenplans",
    )


def _pem(value: str | None) -> str | None:
    """A PEM given inline (``-----BEGIN ...``), or the path of a PEM file."""
    if value is None or value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        return Path(value).expanduser().read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"TOKENPLANS_JWT_PUBLIC_KEY: cannot read {value!r}: {error}") from None
