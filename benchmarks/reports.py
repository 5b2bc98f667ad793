"""Usage report time with 1,000 and 1,000,000 ledger entries, in the same run (SQLite).

Run ``python benchmarks/reports.py`` (``--rounds`` per measurement). For each size it
bulk-loads one subject's ledger straight into ``tokenplans_ledger_entries`` (debits
spread over the 365 days of 2026 and three models, plus plain amounts), fills the daily
rollup from it with the 0004 migration's backfill ``SELECT`` (timed: what upgrading a
database with that ledger costs), checks the report against the ledger, and prints:

* the report of the whole year through ``TokenService.usage_report``, grouped by day
  and model (about 1,100 rows either way), by day, and totals only; median of the rounds;
* for contrast, the same totals summed over the ledger itself (what a report would cost
  without the rollup).

The report reads rollup rows (days x models), never the ledger: its time should not
move between the two sizes while the ledger scan grows with the entries.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType

from sqlalchemy import Engine, text

from tokenplans import PlanCatalog, Principal, TokenService
from tokenplans.testing import SettableClock
from tokenplans_adapters.sql import SqlAccountStore, make_engine, upgrade_schema
from tokenplans_adapters.sql import migrate as migrations

YEAR = (date(2026, 1, 1), date(2026, 12, 31))
SIZES = (1_000, 1_000_000)
#: The report's totals summed over the ledger itself, for contrast.
_LEDGER_SCAN = text(
    "SELECT SUM(amount), COUNT(*) FROM tokenplans_ledger_entries "
    "WHERE subject = :s AND kind IN ('debited', 'hold_settled')"
)


def _migration() -> ModuleType:
    path = migrations.MIGRATIONS / "versions" / "r0004_usage_rollup.py"
    spec = importlib.util.spec_from_file_location("r0004_usage_rollup", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bulk_load(engine: Engine, subject: str, entries: int) -> None:
    """``entries`` debit entries for ``subject``, one ``INSERT ... SELECT`` over a
    recursive series: entry v is on day v % 365 of 2026, with model-a, model-b or
    model-c (a third of them) or a plain amount (every fourth: no model)."""
    load = text(
        """
        WITH RECURSIVE series(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM series WHERE v < :n)
        INSERT INTO tokenplans_ledger_entries (subject, version, kind, at, quota_delta,
            used_delta, amount, message, plan_id, token_quota, token_used, period_start,
            period_end, model, input_tokens, output_tokens, cache_read_tokens,
            cache_write_tokens, reasoning_tokens, credits, price_version)
        SELECT :subject, v, 'debited',
            strftime('%Y-%m-%d %H:%M:%S', '2026-01-01 12:00:00', '+' || (v % 365) || ' days')
                || '.000000',
            0, 1 + v % 7, 1 + v % 7, 'debit', 'basic', 1000000000, 0,
            '2026-01-01 00:00:00.000000', '2027-01-01 00:00:00.000000',
            CASE WHEN v % 4 = 0 THEN NULL ELSE 'model-' || char(97 + v % 3) END,
            CASE WHEN v % 4 = 0 THEN NULL ELSE 1 END,
            CASE WHEN v % 4 = 0 THEN NULL ELSE v % 7 END,
            CASE WHEN v % 4 = 0 THEN NULL ELSE 0 END,
            CASE WHEN v % 4 = 0 THEN NULL ELSE 0 END,
            CASE WHEN v % 4 = 0 THEN NULL ELSE 0 END,
            CASE WHEN v % 4 = 0 THEN NULL ELSE 1 + v % 7 END,
            CASE WHEN v % 4 = 0 THEN NULL ELSE 'bench' END
        FROM series
        """
    )
    with engine.begin() as conn:
        conn.execute(load, {"n": entries, "subject": subject})


def backfill(engine: Engine, subject: str) -> float:
    """Fill the subject's rollup rows with the migration's own ``SELECT``; seconds."""
    select_sql = _migration().spending_by_day("sqlite")
    columns = (
        "subject, day, model, credits, calls, input_tokens, output_tokens, "
        "cache_read_tokens, cache_write_tokens, reasoning_tokens"
    )
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO tokenplans_usage_daily ({columns}) "  # noqa: S608 - constants
                f"SELECT {columns} FROM ({select_sql}) WHERE subject = :subject"
            ),
            {"subject": subject},
        )
    return time.perf_counter() - started


def median_ms(call: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timings per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'reports.sqlite3'}")
        upgrade_schema(engine)
        clock = SettableClock(datetime(2027, 1, 1, tzinfo=UTC))
        service = TokenService(
            SqlAccountStore(engine, clock_source="process"), PlanCatalog.default(), clock
        )
        print(
            f"{'ledger entries':>15} {'load s':>7} {'backfill s':>10} {'rollup rows':>11} "
            f"{'day,model ms':>12} {'day ms':>7} {'totals ms':>9} {'ledger scan ms':>14}"
        )
        for size in SIZES:
            subject = f"bench-{size}"
            started = time.perf_counter()
            bulk_load(engine, subject, size)
            loaded = time.perf_counter() - started
            filled = backfill(engine, subject)
            user = Principal(subject)

            def report(*group_by: str, user: Principal = user) -> object:
                return service.usage_report(user, start=YEAR[0], end=YEAR[1], group_by=group_by)

            full = service.usage_report(user, start=YEAR[0], end=YEAR[1], group_by=("day", "model"))

            def ledger_scan(subject: str = subject) -> tuple[int, int]:
                with engine.connect() as conn:
                    credits, calls = conn.execute(_LEDGER_SCAN, {"s": subject}).one()
                return int(credits), int(calls)

            if ledger_scan() != (full.totals.credits, full.totals.calls):
                raise SystemExit(f"the report disagrees with the ledger for {subject}")
            print(
                f"{size:>15,} {loaded:>7.1f} {filled:>10.2f} {len(full.rows):>11,} "
                f"{median_ms(lambda: report('day', 'model'), args.rounds):>12.2f} "
                f"{median_ms(lambda: report('day'), args.rounds):>7.2f} "
                f"{median_ms(report, args.rounds):>9.2f} "
                f"{median_ms(ledger_scan, max(3, args.rounds // 5)):>14.2f}"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
