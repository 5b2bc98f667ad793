"""The service itself and its catalog: ``GET /``, liveness, readiness, the plans and the
top-up packs. All public: none needs a bearer token."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tokenplans import Pack, Plan, PlanCatalog, StorageUnavailableError
from tokenplans_adapters.http.errors import (
    json_error,
    log_unavailable,
    log_unavailable_error,
    unavailable_log,
)
from tokenplans_adapters.http.offload import in_thread
from tokenplans_adapters.http.openapi import operation, ref, response
from tokenplans_adapters.http.routing import Operation, Resource
from tokenplans_adapters.http.shapes import Shape
from tokenplans_adapters.http.state import state_of

#: A plan as the catalog shows it: every field of :class:`tokenplans.Plan`, its price first.
PLAN: Shape[Plan] = Shape(Plan, lead=("id", "name", "price", "currency"))
#: A top-up pack as the catalog shows it: every field of :class:`tokenplans.Pack`.
PACK: Shape[Pack] = Shape(Pack, lead=("id", "name", "price", "currency", "credits"))


def plan_json(plan: Plan, catalog: PlanCatalog) -> dict[str, Any]:
    """The plan's fields, and whether it is the catalog's default."""
    return {**PLAN.json(plan), "default": plan == catalog.default_plan}


async def root(request: Request) -> JSONResponse:
    """The original service's ``{"message", "base_url"}``; the base URL is derived from the
    request (honouring a mount prefix) unless one was configured."""
    state = state_of(request)
    mount = request.scope.get("root_path", "")
    base_url = state.base_url or str(request.url.replace(path=f"{mount}/api", query=""))
    return JSONResponse({"message": state.title, "base_url": base_url})


async def health(_request: Request) -> JSONResponse:
    """Liveness: the process answers. Touches nothing, so it stays fast under load."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    """Readiness: the database answers and its schema is the one this code expects.
    Every 503 is logged with its cause (rate-limited); a schema problem is also named in
    the answer, since it says what the operator must do, while a driver's message (hosts,
    users) stays in the log."""
    state = state_of(request)
    try:
        problem = await in_thread(state.readiness)
    except StorageUnavailableError as error:
        log_unavailable_error(request, error)
        return json_error(503, "database unavailable", status="unavailable", database="down")
    except Exception as error:
        log_unavailable(request, type(error).__name__, "readiness probe failed", exc_info=True)
        return json_error(503, "database unavailable", status="unavailable", database="down")
    if problem is not None:
        log_unavailable(request, f"readiness: {problem}", problem)
        return json_error(
            503, "database not ready", status="unavailable", database="not ready", message=problem
        )
    # The outage is over: report the repeats of its last burst that no line has yet.
    unavailable_log(request).flush()
    return JSONResponse({"status": "ok", "database": "ok"})


async def plans(request: Request) -> JSONResponse:
    catalog = state_of(request).service.catalog
    return JSONResponse(
        {
            "plans": [plan_json(plan, catalog) for plan in catalog],
            "default_plan": catalog.default_plan.id,
        }
    )


async def packs(request: Request) -> JSONResponse:
    catalog = state_of(request).service.catalog
    return JSONResponse({"packs": [PACK.json(pack) for pack in catalog.packs]})


def _schemas(_catalog: PlanCatalog) -> dict[str, Any]:
    return {
        "Pack": {
            "type": "object",
            "required": list(PACK.names),
            "properties": PACK.properties(),
        },
        "Packs": {
            "type": "object",
            "required": ["packs"],
            "properties": {"packs": {"type": "array", "items": ref("Pack")}},
        },
        "Plan": {
            "type": "object",
            "required": list(PLAN.names),
            "properties": {**PLAN.properties(), "default": {"type": "boolean"}},
        },
        "Plans": {
            "type": "object",
            "required": ["plans", "default_plan"],
            "properties": {
                "plans": {"type": "array", "items": ref("Plan")},
                "default_plan": {"type": "string"},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "Readiness": {
            "type": "object",
            "required": ["status", "database"],
            "properties": {"status": {"const": "ok"}, "database": {"const": "ok"}},
        },
        "Root": {
            "type": "object",
            "required": ["message", "base_url"],
            "properties": {"message": {"type": "string"}, "base_url": {"type": "string"}},
        },
    }


_READY = operation(
    "getReadiness",
    "Readiness: the database answers and its schema is current",
    response(
        "The database answers and its schema is at the expected revision. A 503 says "
        "`database unavailable`, or `database not ready` with a `message` naming the "
        "schema problem and what to run.",
        "Readiness",
    ),
    tag="meta",
    secured=False,
    failures=["503"],
)

RESOURCE = Resource(
    operations=[
        Operation(
            "GET",
            "/",
            root,
            operation(
                "getRoot",
                "Name and base URL",
                response("The API's name.", "Root"),
                tag="meta",
                secured=False,
            ),
        ),
        Operation(
            "GET",
            "/api/health",
            health,
            operation(
                "getHealth",
                "Liveness",
                response("The process answers.", "Health"),
                tag="meta",
                secured=False,
            ),
        ),
        Operation("GET", "/api/health/ready", ready, _READY),
        Operation(
            "GET",
            "/api/plans",
            plans,
            operation(
                "listPlans",
                "The plan catalog",
                response("Plans by rank.", "Plans"),
                tag="plans",
                secured=False,
            ),
        ),
        Operation(
            "GET",
            "/api/packs",
            packs,
            operation(
                "listPacks",
                "The top-up packs on sale (POST /api/payments/order {pack} buys one)",
                response("Packs, in the catalog file's order.", "Packs"),
                tag="plans",
                secured=False,
            ),
        ),
    ],
    schemas=_schemas,
)
