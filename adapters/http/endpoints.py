"""The endpoints: parse the request, call one use case in the thread pool, render JSON.

No rule lives here. Permissions, plan transitions and balances are the core's; errors
propagate to the handlers in :mod:`.errors`. Storage is synchronous, so every service
call goes through ``run_in_threadpool`` and the event loop stays free for other requests.
Times are rendered as ISO 8601 UTC with a ``Z`` suffix (``2026-01-15T12:00:00Z``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from tokenplans import (
    DebitReceipt,
    HistoryPage,
    LedgerEntry,
    PermissionDeniedError,
    Plan,
    PlanCatalog,
    PlanChange,
    Principal,
    StorageUnavailableError,
    TokenService,
    Usage,
)

from .auth import principal_of
from .bodies import MAX_CURSOR_LENGTH, Field, check_query, query_int, query_text, read_object
from .errors import json_error, log_unavailable, log_unavailable_error

DEFAULT_PAGE_SIZE = 50


@attrs.frozen
class ApiState:
    """What the endpoints need, kept on ``app.state.tokenplans`` by ``create_app``."""

    service: TokenService
    readiness: Callable[[], str | None]
    title: str
    base_url: str
    openapi: dict[str, Any]


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.tokenplans
    return state


# -- rendering --------------------------------------------------------------------


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``: what JavaScript's ``Date`` and every JSON client read."""
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def usage_json(usage: Usage) -> dict[str, Any]:
    """The reference's usage fields, plus the subject and the current period."""
    return {
        "plan": usage.plan,
        "token_quota": usage.token_quota,
        "token_used": usage.token_used,
        "remaining": usage.remaining,
        "plan_end_at": iso(usage.plan_end_at),
        "period_start": iso(usage.period_start),
        "period_end": iso(usage.period_end),
        "subject": usage.subject,
    }


def plan_change_json(change: PlanChange) -> dict[str, Any]:
    """The reference's set-plan response: ``status``, ``message`` and the usage after."""
    return {"status": "ok", "message": change.message, **usage_json(change.usage)}


def receipt_json(receipt: DebitReceipt) -> dict[str, Any]:
    return {
        **usage_json(receipt.usage),
        "amount": receipt.amount,
        "idempotency_key": receipt.idempotency_key,
        "replayed": receipt.replayed,
    }


def entry_json(entry: LedgerEntry) -> dict[str, Any]:
    after = entry.after
    return {
        "version": entry.version,
        "kind": entry.kind.value,
        "at": iso(entry.at),
        "amount": entry.amount,
        "quota_delta": entry.quota_delta,
        "used_delta": entry.used_delta,
        "idempotency_key": entry.idempotency_key,
        "payment_id": entry.payment_id,
        "actor": entry.actor,
        "message": entry.message,
        "plan": after.plan_id,
        "token_quota": after.token_quota,
        "token_used": after.token_used,
        "remaining": after.remaining,
        "plan_end_at": iso(after.plan_end_at),
    }


def plan_json(plan: Plan, catalog: PlanCatalog) -> dict[str, Any]:
    return {
        "id": plan.id,
        "name": plan.name,
        "price": plan.price,
        "currency": plan.currency,
        "tokens": plan.tokens,
        "duration_days": plan.duration_days,
        "rank": plan.rank,
        "default": plan == catalog.default_plan,
    }


# -- public -----------------------------------------------------------------------


async def root(request: Request) -> JSONResponse:
    """The reference's ``{"message", "base_url"}``; the base URL is derived from the
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
        problem = await run_in_threadpool(state.readiness)
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
    return JSONResponse({"status": "ok", "database": "ok"})


async def plans(request: Request) -> JSONResponse:
    catalog = state_of(request).service.catalog
    return JSONResponse(
        {
            "plans": [plan_json(plan, catalog) for plan in catalog],
            "default_plan": catalog.default_plan.id,
        }
    )


async def openapi(request: Request) -> JSONResponse:
    """The document, with ``servers`` pointing at wherever the app is mounted."""
    document = dict(state_of(request).openapi)
    document["servers"] = [{"url": request.scope.get("root_path", "") or "/"}]
    return JSONResponse(document)


# -- the caller's own account -----------------------------------------------------

_SET_PLAN = {"plan": Field(str), "reset_used": Field(bool, required=False)}
_CONSUME = {"amount": Field(int), "idempotency_key": Field(str, required=False)}
_GRANT = {"amount": Field(int)}
_PAGE_PARAMETERS = frozenset({"cursor", "limit"})


async def usage(request: Request) -> JSONResponse:
    principal = principal_of(request)
    result = await run_in_threadpool(state_of(request).service.usage, principal)
    return JSONResponse(usage_json(result))


async def set_plan(request: Request) -> JSONResponse:
    return await _set_plan(request, principal_of(request), None)


async def consume(request: Request) -> JSONResponse:
    return await _consume(request, principal_of(request), None)


async def ledger(request: Request) -> JSONResponse:
    return await _ledger(request, principal_of(request), None)


# -- admin: any account -----------------------------------------------------------


def _admin(request: Request) -> tuple[Principal, str]:
    """The admin principal and the path's subject. The admin namespace is admin-only as a
    whole, even for a user's own account: users have the routes above."""
    principal = principal_of(request)
    if not principal.is_admin:
        raise PermissionDeniedError("admin_only", "this route needs the tokenplans:admin scope")
    subject: str = request.path_params["subject"]
    return principal, subject


async def admin_usage(request: Request) -> JSONResponse:
    principal, subject = _admin(request)
    result = await run_in_threadpool(state_of(request).service.usage, principal, subject)
    return JSONResponse(usage_json(result))


async def admin_set_plan(request: Request) -> JSONResponse:
    return await _set_plan(request, *_admin(request))


async def admin_consume(request: Request) -> JSONResponse:
    return await _consume(request, *_admin(request))


async def admin_grant(request: Request) -> JSONResponse:
    principal, subject = _admin(request)
    body = await read_object(request, _GRANT)
    service = state_of(request).service
    result = await run_in_threadpool(service.grant, principal, subject, body["amount"])
    return JSONResponse(usage_json(result))


async def admin_ledger(request: Request) -> JSONResponse:
    return await _ledger(request, *_admin(request))


# -- shared bodies of the user and admin variants ---------------------------------


async def _set_plan(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    body = await read_object(request, _SET_PLAN)
    service = state_of(request).service

    def call() -> PlanChange:
        return service.set_plan(
            principal, body["plan"], reset_used=body.get("reset_used", False), subject=subject
        )

    return JSONResponse(plan_change_json(await run_in_threadpool(call)))


async def _consume(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    body = await read_object(request, _CONSUME)
    service = state_of(request).service

    def call() -> DebitReceipt:
        return service.consume(
            principal,
            body["amount"],
            idempotency_key=body.get("idempotency_key"),
            subject=subject,
        )

    return JSONResponse(receipt_json(await run_in_threadpool(call)))


async def _ledger(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    check_query(request, _PAGE_PARAMETERS)
    cursor = query_text(request, "cursor", MAX_CURSOR_LENGTH)
    limit = query_int(request, "limit", DEFAULT_PAGE_SIZE)
    service = state_of(request).service

    def call() -> HistoryPage:
        return service.history(principal, subject, cursor=cursor, limit=limit)

    page = await run_in_threadpool(call)
    return JSONResponse(
        {"entries": [entry_json(entry) for entry in page.entries], "next_cursor": page.next_cursor}
    )
