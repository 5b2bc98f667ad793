"""What every command shares: the exit codes, the error a command raises to stop, the
parser class, and the integer type for bounded options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn, TypeAlias

from tokenplans_adapters.main.config import Settings

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 1

Handler = Callable[[argparse.Namespace, Settings], int]


class CommandError(Exception):
    """A command cannot proceed; the message is printed as is, with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_CONFIG) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Parser(argparse.ArgumentParser):
    """A mistake on the command line is one line on stderr, saying where to read more,
    and exit code 2 (argparse's default prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


#: What each command module's ``add`` registers its parser on.
Commands: TypeAlias = "argparse._SubParsersAction[Parser]"


def bounded(low: int, high: int | None = None) -> Callable[[str], int]:
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


def say(message: str) -> None:
    print(f"tokenplans: {message}", file=sys.stderr, flush=True)
