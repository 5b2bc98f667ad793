"""Python function calls per operation, this checkout against another, in the same run.

Wall-clock figures swing 2-3x on a shared machine (the other benchmarks say so when they
do); the number of Python calls an operation makes does not. It counts the work the
library adds around the database (SQLite's own C work is one call), so a refactoring
that makes the hot paths heavier shows here however busy the machine is::

    python benchmarks/calls.py                         # this checkout
    python benchmarks/calls.py --against ../old-tree   # and another checkout, A/B

Each checkout is measured in its own process, with its ``src`` and ``adapters`` first on
the path, over a fresh SQLite file: a debit, a usage read, and a hold placed and settled.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = 50
ROUNDS = 500


def measure() -> dict[str, float]:
    """Calls per operation, in this process (its ``sys.path`` picks the checkout)."""
    from tokenplans import PlanCatalog, Principal, SystemClock, TokenService  # noqa: PLC0415
    from tokenplans_adapters.sql import (  # noqa: PLC0415
        SqlAccountStore,
        make_engine,
        upgrade_schema,
    )

    folder = tempfile.mkdtemp(prefix="tokenplans-calls-")
    engine = make_engine(f"sqlite:///{folder}/calls.db")
    upgrade_schema(engine)
    catalog = PlanCatalog.from_mapping({"big": {"price": 0, "tokens": 10**12}})
    service = TokenService(SqlAccountStore(engine), catalog, SystemClock())
    users = [Principal(f"user-{n}") for n in range(ACCOUNTS)]
    for user in users:  # every path warm: statements compiled, rows present
        service.consume(user, 1)
        service.usage(user)
        service.settle(user, service.reserve(user, 5).hold_id, 3)

    def debit(n: int) -> None:
        service.consume(users[n % ACCOUNTS], 1)

    def usage(n: int) -> None:
        service.usage(users[n % ACCOUNTS])

    def hold_pair(n: int) -> None:
        user = users[n % ACCOUNTS]
        service.settle(user, service.reserve(user, 5).hold_id, 3)

    figures = {}
    for name, operation in [("debit", debit), ("usage read", usage), ("hold pair", hold_pair)]:
        profile = cProfile.Profile()
        profile.enable()
        for n in range(ROUNDS):
            operation(n)
        profile.disable()
        figures[name] = pstats.Stats(profile).total_calls / ROUNDS
    engine.dispose()
    return figures


def measure_in(checkout: Path) -> dict[str, float]:
    """:func:`measure` in a child process that imports ``checkout``'s code."""
    paths = [str(checkout / "src"), str(checkout / "adapters")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    script = (
        f"import runpy; m = runpy.run_path({str(Path(__file__).resolve())!r}); "
        "print(repr(m['measure']()))"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    figures: dict[str, float] = eval(done.stdout.strip().splitlines()[-1])  # noqa: S307
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, help="another checkout to measure beside this one")
    args = parser.parse_args()
    here = measure_in(ROOT)
    print("| checkout | debit | usage read | hold pair |")
    print("|---|---|---|---|")
    rows = [("this", here)]
    if args.against is not None:
        rows.append((str(args.against), measure_in(args.against.resolve())))
    for name, figures in rows:
        print(f"| {name} | " + " | ".join(f"{value:,.0f}" for value in figures.values()) + " |")
    if args.against is not None:
        other = rows[1][1]
        ratios = ", ".join(f"{key} {here[key] / other[key]:.2f}x" for key in here)
        print(f"\nPython calls, this / {args.against}: {ratios}")


if __name__ == "__main__":
    main()
