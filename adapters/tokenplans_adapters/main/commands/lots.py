"""``tokenplans lots SUBJECT``: an account's credit lots, in burn order; ``--grant`` and
``--void`` change them (docs/credit-lots.md)."""

from __future__ import annotations

import argparse

from tokenplans import (
    ADMIN_SCOPE,
    Principal,
    StorageUnavailableError,
    SystemClock,
    TokenplansError,
    TokenService,
)
from tokenplans_adapters.main.app import build_catalog
from tokenplans_adapters.main.config import Settings
from tokenplans_adapters.main.engines import open_engine
from tokenplans_adapters.sql import SqlAccountStore

from .base import EXIT_UNAVAILABLE, CommandError, Commands, bounded


def add(commands: Commands) -> None:
    parser = commands.add_parser(
        "lots",
        help="print (or grant, or void) an account's credit lots",
        description=(
            "Print the account's live credit lots in burn order (the plan lot among "
            "them). With --grant, first grant a promotional lot; with --void, first void "
            "the lot with that id."
        ),
    )
    parser.add_argument("subject", help="the account's subject")
    parser.add_argument("--grant", type=bounded(1), metavar="AMOUNT", help="grant a lot")
    parser.add_argument(
        "--expires",
        default="period",
        help='with --grant: "period" (default), "never" or an ISO 8601 instant',
    )
    parser.add_argument("--priority", type=bounded(0), default=0, help="with --grant: 0-1000")
    parser.add_argument("--lot-id", help="with --grant: your id for the lot (idempotent)")
    parser.add_argument("--void", metavar="LOT_ID", help="void this lot first")
    parser.set_defaults(handler=_lots)


def _lots(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_engine(settings)
    try:
        service = TokenService(SqlAccountStore(engine), build_catalog(settings), SystemClock())
        admin = Principal("tokenplans-cli", frozenset({ADMIN_SCOPE}))  # type: ignore[arg-type]
        try:
            if args.void is not None:
                service.void_lot(admin, args.void, subject=args.subject)
            if args.grant is not None:
                service.grant(
                    admin,
                    args.grant,
                    subject=args.subject,
                    expires=args.expires,
                    priority=args.priority,
                    lot_id=args.lot_id,
                )
            usage = service.usage(admin, subject=args.subject)
        except StorageUnavailableError:
            raise
        except TokenplansError as error:
            raise CommandError(str(error), EXIT_UNAVAILABLE) from None
    finally:
        engine.dispose()
    print(
        f"{'lot_id':<24} {'source':<12} {'amount':>10} {'used':>10} {'held':>10} "
        f"{'remaining':>10} {'priority':>8}  expires_at"
    )
    for lot in usage.lots:
        expires = "never" if lot.expires_at is None else lot.expires_at.isoformat()
        print(
            f"{lot.lot_id:<24} {lot.source.value:<12} {lot.amount:>10} {lot.used:>10} "
            f"{lot.held:>10} {lot.remaining:>10} {lot.priority:>8}  {expires}"
            + ("" if lot.status.value == "active" else f" ({lot.status.value})")
        )
    print(
        f"total: quota {usage.token_quota}, used {usage.token_used}, held "
        f"{usage.token_held}, remaining {usage.remaining}"
    )
    return 0
