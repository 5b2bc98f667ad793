"""The ``tokenplans`` command: serve the API, mint tokens, print the catalog, migrate,
sweep expired holds.

Each module of :mod:`.commands` registers one subcommand with its ``add`` function and
points it at its handler, which receives the parsed arguments and the settings (read
once, in :func:`main`). A mistake on the command line or a bad setting ends the command
with exit code 2 and one line on stderr (plus a hint where one helps); an unreachable
database with exit code 1. Development mode's secrets are in
:mod:`tokenplans_adapters.main.dev`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tokenplans import CatalogError, PriceBookError, StorageUnavailableError, is_storable_text
from tokenplans_adapters.jwt_identity import JwtConfigError

from .commands import db, dev_pay, events, holds, lots, plans, report, serve, tokens
from .commands.base import EXIT_CONFIG, EXIT_UNAVAILABLE, CommandError, Handler, Parser
from .config import ConfigError, Settings


def build_parser() -> argparse.ArgumentParser:
    """The ``tokenplans`` argument parser, one subparser per command."""
    parser = Parser(
        prog="tokenplans",
        description="Subscription plans and per-user token quotas: server and tools.",
        epilog="Configuration comes from TOKENPLANS_* environment variables and .env.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (serve, tokens, plans, db, dev_pay, holds, lots, report, events):
        command.add(commands)
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


if __name__ == "__main__":
    sys.exit(main())
