"""Any account, for admins: ``/api/admin/accounts/{subject}`` and its actions.

The whole namespace is admin-only (:func:`~tokenplans_adapters.http.auth.admin_of`). Set-plan,
consume and the ledger are the handlers of :mod:`.tokens` over the path's subject; the
grant exists only here.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tokenplans import MAX_SUBJECT_LENGTH, Grant, PlanCatalog
from tokenplans_adapters.http.auth import admin_of
from tokenplans_adapters.http.offload import in_thread
from tokenplans_adapters.http.openapi import body, example, operation, response
from tokenplans_adapters.http.routing import Operation, Resource
from tokenplans_adapters.http.shapes import Body
from tokenplans_adapters.http.snapshot import usage_answer_json, usage_with_lots_json
from tokenplans_adapters.http.state import state_of

from .tokens import CONSUME_BODY, PAGE_PARAMETERS, consume_from, ledger_of, set_plan_of

GRANT_COMMAND = Body(Grant)


async def admin_usage(request: Request) -> JSONResponse:
    principal, subject = admin_of(request)
    service = state_of(request).service
    result = await in_thread(service.usage, principal, subject=subject)
    return JSONResponse(usage_answer_json(result, service.catalog))


async def admin_set_plan(request: Request) -> JSONResponse:
    return await set_plan_of(request, *admin_of(request))


async def admin_grant(request: Request) -> JSONResponse:
    principal, subject = admin_of(request)
    command = await GRANT_COMMAND.read(request)
    service = state_of(request).service
    result = await in_thread(service.grant, principal, command, subject=subject)
    return JSONResponse(usage_with_lots_json(result))


async def admin_void_lot(request: Request) -> JSONResponse:
    principal, subject = admin_of(request)
    lot_id: str = request.path_params["lot_id"]
    service = state_of(request).service
    result = await in_thread(service.void_lot, principal, lot_id, subject=subject)
    return JSONResponse(usage_with_lots_json(result))


async def admin_consume(request: Request) -> JSONResponse:
    return await consume_from(request, *admin_of(request))


async def admin_ledger(request: Request) -> JSONResponse:
    return await ledger_of(request, *admin_of(request))


# -- OpenAPI ------------------------------------------------------------------------

#: The ``{subject}`` path parameter, for every admin route.
SUBJECT_PARAMETER = {
    "name": "subject",
    "in": "path",
    "required": True,
    "description": (
        "The account's subject (a JWT `sub`, or a user id as text), percent-encoded: "
        "`/` as `%2F`, `%` as `%25`, a space as `%20`. Decoded exactly once."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_SUBJECT_LENGTH},
    "example": "user-42",
}
_ACCOUNT = "/api/admin/accounts/{subject}"
#: The ``{lot_id}`` path parameter of the void route.
LOT_ID_PARAMETER = {
    "name": "lot_id",
    "in": "path",
    "required": True,
    "description": "The lot's id, percent-encoded. Decoded exactly once.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "example": "spring-promo",
}


def _schemas(_catalog: PlanCatalog) -> dict[str, Any]:
    return {
        "GrantRequest": GRANT_COMMAND.schema(),
    }


RESOURCE = Resource(
    operations=[
        Operation(
            "GET",
            _ACCOUNT,
            admin_usage,
            operation(
                "adminGetUsage",
                "Any account's usage (admin)",
                response("Usage now, and the plan's features.", "UsageAnswer"),
                tag="admin",
                parameters=[SUBJECT_PARAMETER],
                failures=["403", "422", "503"],
            ),
        ),
        Operation(
            "POST",
            f"{_ACCOUNT}/set-plan",
            admin_set_plan,
            operation(
                "adminSetPlan",
                "Set any account's plan, upgrades included (admin)",
                response("The plan after the change.", "SetPlanResponse"),
                tag="admin",
                parameters=[SUBJECT_PARAMETER],
                request=body("SetPlanRequest", "The target plan, and whether to zero usage."),
                failures=["400", "403", "409", "503"],
            ),
        ),
        Operation(
            "POST",
            f"{_ACCOUNT}/grant",
            admin_grant,
            operation(
                "adminGrantTokens",
                "Add tokens to an account's current period (admin)",
                response("Usage after the grant.", "Usage"),
                tag="admin",
                parameters=[SUBJECT_PARAMETER],
                request=body(
                    "GrantRequest",
                    "How many tokens; with expires, priority or lot_id, a promotional lot "
                    "of its own (docs/credit-lots.md).",
                    {
                        "grant": example("Tokens", {"amount": 500}),
                        "lot": example(
                            "A promotional lot",
                            {
                                "amount": 5000,
                                "expires": "2027-01-31T00:00:00Z",
                                "priority": 10,
                                "lot_id": "spring-promo",
                            },
                        ),
                    },
                ),
                failures=["403", "409", "422", "503"],
            ),
        ),
        Operation(
            "POST",
            f"{_ACCOUNT}/lots/{{lot_id}}/void",
            admin_void_lot,
            operation(
                "adminVoidLot",
                "Void a credit lot: its free remainder is forfeited (admin)",
                response("Usage after the void, with the lots.", "Usage"),
                tag="admin",
                parameters=[SUBJECT_PARAMETER, LOT_ID_PARAMETER],
                failures=["403", "404", "422", "503"],
            ),
        ),
        Operation(
            "POST",
            f"{_ACCOUNT}/consume",
            admin_consume,
            operation(
                "adminConsumeTokens",
                "Debit tokens from any account (admin)",
                response("Usage after the debit.", "ConsumeResponse"),
                tag="admin",
                parameters=[SUBJECT_PARAMETER],
                request=CONSUME_BODY,
                failures=["400", "402", "403", "409", "503"],
            ),
        ),
        Operation(
            "GET",
            f"{_ACCOUNT}/ledger",
            admin_ledger,
            operation(
                "adminGetLedger",
                "Any account's ledger, newest first (admin)",
                response("One page of entries.", "LedgerPage"),
                tag="admin",
                parameters=[SUBJECT_PARAMETER, *PAGE_PARAMETERS],
                failures=["403", "422", "503"],
            ),
        ),
    ],
    schemas=_schemas,
)
