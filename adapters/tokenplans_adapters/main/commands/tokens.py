"""``tokenplans token``: mint a bearer token with the configured secret, or with
``--dev`` for this folder's development server."""

from __future__ import annotations

import argparse
from datetime import timedelta

from tokenplans import ADMIN_SCOPE, InvalidRequestError, check_subject
from tokenplans_adapters.jwt_identity import mint_token
from tokenplans_adapters.main.config import Settings
from tokenplans_adapters.main.dev import DEV_FILE, dev_settings, load_dev_secrets

from .base import CommandError, Commands, bounded

MAX_TTL_SECONDS = 10 * 366 * 24 * 3600  # ten years: far enough, and no date overflow


SIGNING_HINT = (
    "set TOKENPLANS_JWT_SECRET (at least 32 bytes) in the environment or in .env, e.g.\n"
    "  export TOKENPLANS_JWT_SECRET=\"$(python -c 'import secrets; "
    "print(secrets.token_urlsafe(48))')\"\n"
    "or run `tokenplans serve --dev` for local development"
)


def add(commands: Commands) -> None:
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
        type=bounded(1, MAX_TTL_SECONDS),
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
        raise CommandError(f"{problem}: cannot sign a token.\n{SIGNING_HINT}")
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
