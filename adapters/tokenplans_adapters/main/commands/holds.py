"""``tokenplans holds sweep``: write the expiries of holds nobody touched since."""

from __future__ import annotations

import argparse

from tokenplans import ADMIN_SCOPE, Principal, SystemClock, TokenService
from tokenplans_adapters.main.app import build_catalog
from tokenplans_adapters.main.config import Settings
from tokenplans_adapters.main.engines import open_engine
from tokenplans_adapters.sql import SqlAccountStore

from .base import Commands, bounded


def add(commands: Commands) -> None:
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
    sweep.add_argument("--batch", type=bounded(1), default=1000, help="accounts per query")
    sweep.set_defaults(handler=_holds_sweep)


def _holds_sweep(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_engine(settings)
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
