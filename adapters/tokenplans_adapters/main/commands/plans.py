"""``tokenplans plans``: the catalog in use, as a table or as a plan file."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tokenplans import PlanCatalog
from tokenplans_adapters.main.app import build_catalog
from tokenplans_adapters.main.config import Settings
from tokenplans_adapters.main.plan_files import UnwritablePlanError, render_plan_file

from .base import CommandError, Commands


def add(commands: Commands) -> None:
    parser = commands.add_parser(
        "plans",
        help="print the plan catalog",
        description=(
            "Print the catalog (TOKENPLANS_PLANS_FILE, or the built-in plans) as a table, "
            "or as a JSON or TOML plan file that TOKENPLANS_PLANS_FILE accepts."
        ),
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "toml"),
        default="table",
        help="table (default), or a plan file: json or toml",
    )
    parser.add_argument(
        "--json", action="store_const", const="json", dest="format", help="--format json"
    )
    parser.set_defaults(handler=_plans)


def _plans(args: argparse.Namespace, settings: Settings) -> int:
    catalog = build_catalog(settings)
    if args.format == "table":
        _print_table(catalog)
    else:
        try:
            print(render_plan_file(catalog, args.format), end="")
        except UnwritablePlanError as refused:
            raise CommandError(str(refused)) from None
    return 0


def _print_table(catalog: PlanCatalog) -> None:
    rows = [("id", "name", "price", "currency", "tokens", "term", "features", "")]
    rows += [
        (
            plan.id,
            plan.name,
            str(plan.price),
            plan.currency,
            str(plan.tokens),
            "-" if plan.duration_days is None else f"{plan.duration_days} days",
            ",".join(plan.features) or "-",
            "(default)" if plan == catalog.default_plan else "",
        )
        for plan in catalog
    ]
    _print_rows(rows)
    if catalog.packs:
        _print_packs(catalog)
    print("prices are in minor units (paise, cents)")


def _print_rows(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _print_packs(catalog: PlanCatalog) -> None:
    """The top-up packs, under the plans: a blank line, then their own table."""
    rows = [("pack", "name", "price", "currency", "credits", "expires", "priority")]
    rows += [
        (
            pack.id,
            pack.name,
            str(pack.price),
            pack.currency,
            str(pack.credits),
            "never" if pack.expires_after_days is None else f"{pack.expires_after_days} days",
            str(pack.priority),
        )
        for pack in catalog.packs
    ]
    print()
    _print_rows(rows)
