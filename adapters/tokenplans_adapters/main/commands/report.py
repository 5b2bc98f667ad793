"""``tokenplans report``: a subject's usage (or every subject's) by day and/or model, as
CSV on standard output, read from the daily rollup (docs/reports.md)."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date

from tokenplans import ADMIN_SCOPE, InvalidRequestError, Principal, SystemClock, TokenService
from tokenplans_adapters.main.app import build_catalog
from tokenplans_adapters.main.config import Settings
from tokenplans_adapters.main.engines import open_engine
from tokenplans_adapters.sql import SqlAccountStore

from .base import CommandError, Commands

_READER = Principal("tokenplans-report", frozenset({ADMIN_SCOPE}))  # type: ignore[arg-type]


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value[:40]!r} is not a day (YYYY-MM-DD)") from None


def add(commands: Commands) -> None:
    parser = commands.add_parser(
        "report",
        help="print usage by day and/or model as CSV",
        description=(
            "Print what SUBJECT (every subject when omitted) spent from --from to --to "
            "(UTC days, both included, at most 366), one CSV row per day and/or model "
            "with a header row; the last row, `total`, sums them."
        ),
    )
    parser.add_argument("subject", nargs="?", help="whose usage (omitted: every subject's)")
    parser.add_argument("--from", dest="start", type=_day, required=True, help="first day")
    parser.add_argument("--to", dest="end", type=_day, required=True, help="last day")
    parser.add_argument(
        "--group-by",
        default="day",
        choices=["day", "model", "day,model"],
        help="rows per day, per model or both (default: day)",
    )
    parser.set_defaults(handler=_report)


def _report(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_engine(settings)
    try:
        service = TokenService(SqlAccountStore(engine), build_catalog(settings), SystemClock())
        try:
            if args.subject is None:
                report = service.usage_report_all(
                    _READER, start=args.start, end=args.end, group_by=args.group_by
                )
            else:
                report = service.usage_report(
                    _READER,
                    start=args.start,
                    end=args.end,
                    group_by=args.group_by,
                    subject=args.subject,
                )
        except InvalidRequestError as error:
            raise CommandError(str(error)) from None
    finally:
        engine.dispose()
    keys = list(report.group_by)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([*keys, *report.totals.counts()])
    for row in report.rows:
        key = {"day": row.day.isoformat() if row.day else "", "model": row.model or ""}
        writer.writerow([*(key[k] for k in keys), *row.counts().values()])
    writer.writerow(["total", *([""] * (len(keys) - 1)), *report.totals.counts().values()])
    return 0
