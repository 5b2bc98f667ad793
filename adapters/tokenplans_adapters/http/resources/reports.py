"""Usage over time and across accounts: reports by day and model, the top spenders and
the accounts list (docs/reports.md).

- ``GET /api/tokens/usage/report``: the caller's own report;
- ``GET /api/admin/accounts/{subject}/usage/report``: any subject's (admin);
- ``GET /api/admin/usage/report``: every subject's summed (admin);
- ``GET /api/admin/usage/top-spenders``: subjects by credits spent, paged (admin);
- ``GET /api/admin/accounts``: the stored accounts with their usage, paged (admin).

The reports and the spenders answer JSON, or CSV when the request's ``Accept`` names
``text/csv`` (the rows only, with a header row; the totals are the JSON's).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tokenplans import (
    MAX_PAGE_SIZE,
    MAX_REPORT_DAYS,
    MAX_SUBJECT_LENGTH,
    AccountsPage,
    InvalidRequestError,
    PlanCatalog,
    Principal,
    SpendersPage,
    UsageReport,
    UsageRow,
)
from tokenplans_adapters.http.auth import admin_of, check_admin, principal_of
from tokenplans_adapters.http.bodies import query_int, query_text
from tokenplans_adapters.http.offload import in_thread
from tokenplans_adapters.http.openapi import COUNT, JSON, errors, nullable, ref
from tokenplans_adapters.http.routing import Operation, Resource
from tokenplans_adapters.http.snapshot import USAGE_FIELDS, USAGE_PROPERTIES, usage_with_lots_json
from tokenplans_adapters.http.state import state_of

from .admin import SUBJECT_PARAMETER

CSV = "text/csv"
DEFAULT_PAGE_SIZE = 50
#: A page cursor: a subject, or credits and a subject (the spenders').
MAX_CURSOR_LENGTH = 20 + MAX_SUBJECT_LENGTH
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: A row's numbers, in the order the JSON and the CSV show them.
COUNT_FIELDS = tuple(UsageRow(None, None, 0, 0, 0, 0).counts())


# -- reading the query ---------------------------------------------------------------


def _day(request: Request, name: str) -> date:
    raw = request.query_params.get(name)
    if raw is None:
        raise InvalidRequestError(f"{name} is required (a UTC day, YYYY-MM-DD)")
    if _DAY.fullmatch(raw) is None:
        raise InvalidRequestError(f"{name} must be a day as YYYY-MM-DD, got {raw!r}")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequestError(f"{name} is not a day of the calendar: {raw!r}") from None


def _group_by(request: Request) -> str:
    return request.query_params.get("group_by", "day")


def _wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip().lower() == CSV for part in accept.split(","))


# -- rendering -----------------------------------------------------------------------


def counts_json(row: UsageRow) -> dict[str, int]:
    return row.counts()


def row_json(row: UsageRow) -> dict[str, Any]:
    return {
        "day": None if row.day is None else row.day.isoformat(),
        "model": row.model,
        **counts_json(row),
    }


def report_json(report: UsageReport) -> dict[str, Any]:
    return {
        "subject": report.subject,
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "group_by": list(report.group_by),
        "rows": [row_json(row) for row in report.rows],
        "totals": counts_json(report.totals),
    }


def spenders_json(page: SpendersPage) -> dict[str, Any]:
    return {
        "from": page.start.isoformat(),
        "to": page.end.isoformat(),
        "rows": [{"subject": s.subject, **counts_json(s.totals)} for s in page.rows],
        "next_cursor": page.next_cursor,
    }


def accounts_json(page: AccountsPage) -> dict[str, Any]:
    return {
        "accounts": [usage_with_lots_json(usage) for usage in page.accounts],
        "next_cursor": page.next_cursor,
    }


def _cell(value: object) -> object:
    """A CSV cell; text a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``
    first) is prefixed with ``'``, as OWASP advises."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_response(header: Sequence[str], rows: Iterable[Sequence[object]], name: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return Response(
        out.getvalue(),
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def report_csv(report: UsageReport) -> Response:
    keys = list(report.group_by)
    rows = (
        [
            *([row.day.isoformat() if row.day else ""] if "day" in keys else []),
            *([row.model] if "model" in keys else []),
            *row.counts().values(),
        ]
        for row in report.rows
    )
    name = f"usage-{report.start.isoformat()}-{report.end.isoformat()}"
    return csv_response([*keys, *COUNT_FIELDS], rows, name)


def spenders_csv(page: SpendersPage) -> Response:
    rows = ([s.subject, *s.totals.counts().values()] for s in page.rows)
    name = f"top-spenders-{page.start.isoformat()}-{page.end.isoformat()}"
    return csv_response(["subject", *COUNT_FIELDS], rows, name)


# -- handlers --------------------------------------------------------------------------


async def usage_report(request: Request) -> Response:
    return await report_of(request, principal_of(request), None)


async def admin_usage_report(request: Request) -> Response:
    return await report_of(request, *admin_of(request))


async def report_of(request: Request, principal: Principal, subject: str | None) -> Response:
    """``subject``'s report (``None``: the caller's own) in JSON or CSV."""
    start, end, group_by = _day(request, "from"), _day(request, "to"), _group_by(request)
    service = state_of(request).service

    def call() -> UsageReport:
        return service.usage_report(
            principal, start=start, end=end, group_by=group_by, subject=subject
        )

    report = await in_thread(call)
    return report_csv(report) if _wants_csv(request) else JSONResponse(report_json(report))


async def all_usage_report(request: Request) -> Response:
    principal = check_admin(principal_of(request))
    start, end, group_by = _day(request, "from"), _day(request, "to"), _group_by(request)
    service = state_of(request).service

    def call() -> UsageReport:
        return service.usage_report_all(principal, start=start, end=end, group_by=group_by)

    report = await in_thread(call)
    return report_csv(report) if _wants_csv(request) else JSONResponse(report_json(report))


async def top_spenders(request: Request) -> Response:
    principal = check_admin(principal_of(request))
    start, end = _day(request, "from"), _day(request, "to")
    cursor = query_text(request, "cursor", MAX_CURSOR_LENGTH)
    limit = query_int(request, "limit", DEFAULT_PAGE_SIZE)
    service = state_of(request).service

    def call() -> SpendersPage:
        return service.top_spenders(principal, start=start, end=end, cursor=cursor, limit=limit)

    page = await in_thread(call)
    return spenders_csv(page) if _wants_csv(request) else JSONResponse(spenders_json(page))


async def list_accounts(request: Request) -> Response:
    principal = check_admin(principal_of(request))
    plan = query_text(request, "plan", 64)
    cursor = query_text(request, "cursor", MAX_CURSOR_LENGTH)
    limit = query_int(request, "limit", DEFAULT_PAGE_SIZE)
    service = state_of(request).service

    def call() -> AccountsPage:
        return service.list_accounts(principal, plan=plan, cursor=cursor, limit=limit)

    return JSONResponse(accounts_json(await in_thread(call)))


# -- OpenAPI ---------------------------------------------------------------------------

_DAY_SCHEMA = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
RANGE_PARAMETERS = [
    {
        "name": "from",
        "in": "query",
        "required": True,
        "description": f"The first UTC day, included. At most {MAX_REPORT_DAYS} days to `to`.",
        "schema": _DAY_SCHEMA,
        "example": "2026-12-01",
    },
    {
        "name": "to",
        "in": "query",
        "required": True,
        "description": "The last UTC day, included; not before `from`.",
        "schema": _DAY_SCHEMA,
        "example": "2026-12-31",
    },
]
REPORT_PARAMETERS = [
    *RANGE_PARAMETERS,
    {
        "name": "group_by",
        "in": "query",
        "required": False,
        "description": "Rows per `day`, per `model`, per both (`day,model`); empty: totals.",
        "schema": {"type": "string", "enum": ["day", "model", "day,model", ""], "default": "day"},
    },
]
_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 50},
}


def _cursor(description: str) -> dict[str, Any]:
    return {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", "maxLength": MAX_CURSOR_LENGTH},
    }


def _json_or_csv(description: str, schema: str, csv_columns: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            JSON: {"schema": ref(schema)},
            CSV: {
                "schema": {"type": "string"},
                "example": csv_columns,
            },
        },
    }


def _operation(
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    *,
    tag: str,
    parameters: list[dict[str, Any]],
    failures: Sequence[str] = ("403", "422", "503"),
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "parameters": parameters,
        "security": [{"bearer": []}],
        "responses": dict(sorted({"200": ok, **errors(*failures, "401")}.items())),
    }


_REPORT_CSV = (
    "day,model,credits,calls,input_tokens,output_tokens,cache_read_tokens,"
    "cache_write_tokens,reasoning_tokens\r\n2026-12-01,gpt-4o,1520,3,1200,300,0,0,20\r\n"
)
_REPORT_OK = _json_or_csv(
    "The report: `rows` where something was spent, in day then model order, and "
    "`totals`. With `Accept: text/csv`, the rows as CSV with a header row (the grouped "
    "columns, then the numbers; no totals row).",
    "UsageReport",
    _REPORT_CSV,
)


def _schemas(_catalog: PlanCatalog) -> dict[str, Any]:
    counts = {
        "credits": {**COUNT, "description": "Credits spent: the debits' and settles' amounts."},
        "calls": {**COUNT, "description": "Debits and settles."},
        **{
            name: {**COUNT, "description": "Tokens of this kind in the priced calls."}
            for name in COUNT_FIELDS[2:]
        },
    }
    totals = {"type": "object", "required": list(counts), "properties": counts}
    return {
        "UsageTotals": totals,
        "UsageReportRow": {
            "type": "object",
            "required": ["day", "model", *counts],
            "properties": {
                "day": nullable(
                    {**_DAY_SCHEMA, "description": "The UTC day; null unless grouped by day."}
                ),
                "model": nullable(
                    {
                        "type": "string",
                        "description": 'The model; `""` for amounts not priced from a model '
                        "call; null unless grouped by model.",
                    }
                ),
                **counts,
            },
        },
        "UsageReport": {
            "type": "object",
            "required": ["subject", "from", "to", "group_by", "rows", "totals"],
            "properties": {
                "subject": nullable(
                    {"type": "string", "description": "Whose; null for every subject's."}
                ),
                "from": _DAY_SCHEMA,
                "to": _DAY_SCHEMA,
                "group_by": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["day", "model"]},
                },
                "rows": {"type": "array", "items": ref("UsageReportRow")},
                "totals": ref("UsageTotals"),
            },
        },
        "TopSpenders": {
            "type": "object",
            "required": ["from", "to", "rows", "next_cursor"],
            "properties": {
                "from": _DAY_SCHEMA,
                "to": _DAY_SCHEMA,
                "rows": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["subject", *counts],
                        "properties": {"subject": {"type": "string"}, **counts},
                    },
                },
                "next_cursor": nullable({"type": "string"}),
            },
        },
        "AccountsPage": {
            "type": "object",
            "required": ["accounts", "next_cursor"],
            "properties": {
                "accounts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": list(USAGE_FIELDS),
                        "properties": dict(USAGE_PROPERTIES),
                    },
                },
                "next_cursor": nullable({"type": "string"}),
            },
        },
    }


RESOURCE = Resource(
    operations=[
        Operation(
            "GET",
            "/api/tokens/usage/report",
            usage_report,
            _operation(
                "getUsageReport",
                "The caller's usage by day and/or model",
                _REPORT_OK,
                tag="tokens",
                parameters=REPORT_PARAMETERS,
                failures=("422", "503"),
            ),
        ),
        Operation(
            "GET",
            "/api/admin/accounts/{subject}/usage/report",
            admin_usage_report,
            _operation(
                "adminGetUsageReport",
                "Any account's usage by day and/or model (admin)",
                _REPORT_OK,
                tag="admin",
                parameters=[SUBJECT_PARAMETER, *REPORT_PARAMETERS],
            ),
        ),
        Operation(
            "GET",
            "/api/admin/usage/report",
            all_usage_report,
            _operation(
                "adminGetAllUsageReport",
                "Every account's usage summed, by day and/or model (admin)",
                _REPORT_OK,
                tag="admin",
                parameters=REPORT_PARAMETERS,
            ),
        ),
        Operation(
            "GET",
            "/api/admin/usage/top-spenders",
            top_spenders,
            _operation(
                "adminGetTopSpenders",
                "Accounts by credits spent, most first (admin)",
                _json_or_csv(
                    "One page of subjects with their totals, by credits descending then "
                    "subject; `next_cursor` for the next. CSV with `Accept: text/csv`.",
                    "TopSpenders",
                    "subject,credits,calls,input_tokens,output_tokens,cache_read_tokens,"
                    "cache_write_tokens,reasoning_tokens\r\nuser-42,1520,3,1200,300,0,0,20\r\n",
                ),
                tag="admin",
                parameters=[
                    *RANGE_PARAMETERS,
                    _cursor("`next_cursor` of the previous page; omitted: the first."),
                    _LIMIT,
                ],
            ),
        ),
        Operation(
            "GET",
            "/api/admin/accounts",
            list_accounts,
            _operation(
                "adminListAccounts",
                "The stored accounts with their usage, in subject order (admin)",
                {
                    "description": "One page of accounts as of now; `next_cursor` for the next.",
                    "content": {JSON: {"schema": ref("AccountsPage")}},
                },
                tag="admin",
                parameters=[
                    {
                        "name": "plan",
                        "in": "query",
                        "required": False,
                        "description": "Only the accounts on this plan (as of now).",
                        "schema": {"type": "string", "maxLength": 64},
                    },
                    _cursor("`next_cursor` of the previous page (a subject); omitted: the first."),
                    _LIMIT,
                ],
                failures=("400", "403", "422", "503"),
            ),
        ),
    ],
    schemas=_schemas,
)
