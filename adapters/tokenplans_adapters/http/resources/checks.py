"""Asking before a call: ``POST /api/tokens/check`` and its admin variant.

A check answers 200 whether the debit, the reserve or the feature it asks about is
allowed or not (``allowed`` and ``reason`` say which), and writes nothing: see
docs/quotas.md, "Asking before a call".
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tokenplans import Check, CheckReason, CheckResult, PlanCatalog, Principal
from tokenplans_adapters.http.auth import admin_of, principal_of
from tokenplans_adapters.http.offload import in_thread
from tokenplans_adapters.http.openapi import body, example, operation, response
from tokenplans_adapters.http.resources.pricing import CALL_VALUES, EXAMPLE_MODEL
from tokenplans_adapters.http.routing import Operation, Resource
from tokenplans_adapters.http.shapes import Body, Shape
from tokenplans_adapters.http.state import state_of

from .admin import SUBJECT_PARAMETER

CHECK_COMMAND = Body(Check, one_of=("amount", "estimate", "feature"), nested=CALL_VALUES)
CHECK: Shape[CheckResult] = Shape(CheckResult)


def check_json(result: CheckResult) -> dict[str, Any]:
    """The answer; ``requested`` only when credits were asked about (not for a feature)."""
    shown = CHECK.json(result)
    if result.requested is None:
        del shown["requested"]
    return shown


async def check(request: Request) -> JSONResponse:
    return await check_of(request, principal_of(request), None)


async def admin_check(request: Request) -> JSONResponse:
    return await check_of(request, *admin_of(request))


async def check_of(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    """A check on ``subject``'s account (``None``: the caller's own)."""
    command = await CHECK_COMMAND.read(request)
    service = state_of(request).service

    def call() -> CheckResult:
        return service.check(principal, command, subject=subject)

    return JSONResponse(check_json(await in_thread(call)))


# -- OpenAPI ------------------------------------------------------------------------

_CHECK_BODY = body(
    "CheckRequest",
    "What to ask about: credits, a model call's estimate, or a feature.",
    {
        "amount": example("A debit or reserve of so many credits", {"amount": 500}),
        "estimate": example(
            "A model call, priced as a reserve prices it",
            {"estimate": {"model": EXAMPLE_MODEL, "input_tokens": 250, "max_output_tokens": 500}},
        ),
        "feature": example("A feature of the plan", {"feature": "export"}),
    },
)


def _schemas(_catalog: PlanCatalog) -> dict[str, Any]:
    properties = CHECK.properties()
    properties["reason"]["description"] = (
        "`ok`; `insufficient_credits` (more than `remaining` asked); "
        "`feature_not_in_plan` (the plan does not list the feature)."
    )
    return {
        "CheckRequest": CHECK_COMMAND.schema(
            description="Exactly one of `amount` (credits), `estimate` (a model call, "
            "priced as a reserve prices it) or `feature`; none or several is a 422. A "
            "`null` field counts as absent."
        ),
        "CheckResult": {
            "type": "object",
            "required": [name for name in properties if name != "requested"],
            "properties": properties,
            "examples": [
                {
                    "allowed": False,
                    "reason": CheckReason.INSUFFICIENT_CREDITS.value,
                    "requested": 500,
                    "remaining": 120,
                    "resets_at": "2026-03-01T00:00:00Z",
                    "plan": "basic",
                }
            ],
        },
    }


def _operation(admin: bool) -> Operation:
    who = " (admin)" if admin else ""
    return Operation(
        "POST",
        "/api/admin/accounts/{subject}/check" if admin else "/api/tokens/check",
        admin_check if admin else check,
        operation(
            "adminCheck" if admin else "check",
            f"Would a debit, a reserve or a feature be allowed now? Writes nothing{who}",
            response(
                "The answer, allowed or not (`allowed`, `reason`); `requested` only when "
                "credits were asked about.",
                "CheckResult",
            ),
            tag="admin" if admin else "tokens",
            parameters=[SUBJECT_PARAMETER] if admin else None,
            request=_CHECK_BODY,
            failures=["400", "403", "503"] if admin else ["400", "503"],
        ),
    )


RESOURCE = Resource(operations=[_operation(False), _operation(True)], schemas=_schemas)
