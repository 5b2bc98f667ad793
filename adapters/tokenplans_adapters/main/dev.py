"""Development mode's own secrets, kept in a local file so that other commands can sign
for the running ``tokenplans serve --dev`` server.

``serve --dev`` never uses, derives from or prints a configured secret: a token it
printed, copied out of a log, must not work on a production server that shares the
configuration. Its JWT secret and its offline payment secret are random, made on the
first run and kept in ``.tokenplans-dev.json`` in the working folder (readable by its
owner only; ``.gitignore`` lists it), so its tokens survive a restart and
``tokenplans token --dev`` and ``tokenplans dev pay`` in another shell sign for the same
server. Deleting the file starts afresh, and invalidates every development token.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import attrs

from .config import MIN_SECRET_BYTES, ConfigError, Settings

DEV_FILE = Path(".tokenplans-dev.json")
_NOTE = "tokenplans serve --dev: development secrets, for this folder only; never production"


def _hidden(_value: object) -> str:
    return "'***'"


@attrs.frozen
class DevSecrets:
    """What the development server signs with, and where it listens."""

    jwt_secret: str = attrs.field(repr=_hidden)
    payment_secret: str = attrs.field(repr=_hidden)
    api_url: str | None = None

    @classmethod
    def fresh(cls) -> DevSecrets:
        return cls(secrets.token_urlsafe(48), secrets.token_urlsafe(48))


def load_dev_secrets(path: Path = DEV_FILE) -> DevSecrets | None:
    """The development secrets in ``path``, ``None`` when there is no such file, or
    :class:`ConfigError` when it is not one this module wrote."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
        dev = DevSecrets(data["jwt_secret"], data["payment_secret"], data.get("api_url"))
    except (ValueError, KeyError, TypeError):
        dev = None
    if dev is None or not all(
        isinstance(secret, str) and len(secret.encode()) >= MIN_SECRET_BYTES
        for secret in (dev.jwt_secret, dev.payment_secret)
    ):
        raise ConfigError(
            f"{path} is not a tokenplans development file: delete it, then run "
            "`tokenplans serve --dev` again"
        )
    return dev


def save_dev_secrets(dev: DevSecrets, path: Path = DEV_FILE) -> None:
    """Write ``dev`` to ``path`` atomically, readable by its owner only."""
    data = {"note": _NOTE, **attrs.asdict(dev)}
    staging = path.with_name(path.name + ".tmp")
    try:
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
        os.replace(staging, path)
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror}") from None


def dev_secrets_for(api_url: str, path: Path = DEV_FILE) -> DevSecrets:
    """The secrets of the last development server in this folder (fresh ones the first
    time), now recorded as serving ``api_url``."""
    dev = attrs.evolve(load_dev_secrets(path) or DevSecrets.fresh(), api_url=api_url)
    save_dev_secrets(dev, path)
    return dev


def dev_settings(settings: Settings, dev: DevSecrets) -> Settings:
    """``settings`` with every secret replaced by the development ones: HS256 with the
    dev secret (no audience, issuer or public key, so the printed tokens work) and the
    offline gateways (Razorpay's, the default provider, and Stripe's), whose webhooks are
    signed with the dev payment secret too. The database, catalog, prices, CORS and body
    limit stay as configured."""
    return attrs.evolve(
        settings,
        jwt_secret=dev.jwt_secret,
        jwt_algorithms=("HS256",),
        jwt_public_key=None,
        jwt_jwks_url=None,
        jwt_audience=None,
        jwt_issuer=None,
        razorpay_key_id=None,
        razorpay_key_secret=None,
        razorpay_webhook_secret=dev.payment_secret,
        razorpay_previous_webhook_secret=None,
        offline_payment_secret=dev.payment_secret,
        stripe_secret_key=None,
        stripe_webhook_secret=dev.payment_secret,
        stripe_offline=True,
        # The usage page signs with a key derived from the dev JWT secret, and its
        # checkout pays offline orders itself.
        portal_secret=None,
        portal_offline_payments=True,
    )


def ignored_in_dev(settings: Settings) -> list[str]:
    """The configured identity and payment settings that development mode ignores."""
    configured = {
        "the JWT secret": settings.jwt_secret,
        "the JWT public key or JWKS": settings.jwt_public_key or settings.jwt_jwks_url,
        "the JWT audience and issuer": settings.jwt_audience or settings.jwt_issuer,
        "the Razorpay keys": settings.razorpay_key_id or settings.razorpay_key_secret,
        "the webhook secret": settings.razorpay_webhook_secret,
        "the offline payment secret": settings.offline_payment_secret,
        "the Stripe keys": settings.stripe_secret_key or settings.stripe_webhook_secret,
        "the usage page's secret": settings.portal_secret,
    }
    return [name for name, value in configured.items() if value]
