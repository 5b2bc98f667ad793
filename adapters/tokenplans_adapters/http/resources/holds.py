"""Holds: reserve tokens before a model call, settle the actual count after.

``/api/tokens/holds`` is the caller's own; ``/api/admin/accounts/{subject}/holds`` the same
handlers over the path's subject, for an admin. Every answer is the hold's fields beside
the account's usage as the request left it (so ``token_held`` and ``remaining`` already
show what it did), taken from the change itself, not read again; a list of holds shows
the usage read just after it. A
``{hold_id}`` in the path is percent-decoded once, like a subject
(:class:`~tokenplans_adapters.http.routing.RawPathRoute`); another subject's hold is not
found (404), whoever asks.

A reserve holds an ``amount`` or the most an ``estimate`` of a model call can cost; a
settle charges an ``amount`` or what a call's ``usage`` costs (:mod:`.pricing` reads
both). A priced answer adds ``credits``, ``price_version`` and the ``usage`` priced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from tokenplans import (
    Hold,
    PlanCatalog,
    Principal,
    Reserve,
    Settle,
    TokenService,
    Usage,
)
from tokenplans_adapters.http.auth import admin_of, principal_of
from tokenplans_adapters.http.bodies import read_optional_object
from tokenplans_adapters.http.offload import in_thread
from tokenplans_adapters.http.openapi import (
    body,
    example,
    operation,
    ref,
    response,
)
from tokenplans_adapters.http.resources.pricing import (
    CALL_VALUES,
    EXAMPLE_MODEL,
    PRICED_PROPERTIES,
    USAGE_EXAMPLES,
    priced_json,
)
from tokenplans_adapters.http.routing import Operation, Resource
from tokenplans_adapters.http.shapes import Body
from tokenplans_adapters.http.snapshot import (
    HOLD,
    USAGE_FIELDS,
    USAGE_PROPERTIES,
    usage_json,
)
from tokenplans_adapters.http.state import state_of

from .admin import SUBJECT_PARAMETER
from .hold_errors import CONFLICT_ON_CLOSE, CONFLICT_ON_RESERVE, HOLD_ERROR_SCHEMAS, NOT_FOUND

T = TypeVar("T")

RESERVE_COMMAND = Body(Reserve, one_of=("amount", "estimate"), nested=CALL_VALUES)
SETTLE_COMMAND = Body(Settle, one_of=("amount", "usage"), nested=CALL_VALUES)


# -- rendering --------------------------------------------------------------------


def hold_json(hold: Hold) -> dict[str, Any]:
    """The usage after the request (the service's answer carries it), then the hold and
    whether it repeats a first answer."""
    if hold.usage is None:
        raise TypeError("a hold answer needs the usage the service's answer carries")
    usage = hold.usage
    priced = {} if hold.priced is None else priced_json(hold.priced)
    return {**usage_json(usage), **HOLD.json(hold), "replayed": hold.replayed, **priced}


def holds_json(holds: Sequence[Hold], usage: Usage) -> dict[str, Any]:
    return {**usage_json(usage), "holds": [HOLD.json(hold) for hold in holds]}


# -- handlers ---------------------------------------------------------------------


async def _hold(request: Request, call: Callable[[TokenService], Hold]) -> JSONResponse:
    """``call`` on the service in the thread pool, answered as :func:`hold_json`."""
    return JSONResponse(hold_json(await in_thread(call, state_of(request).service)))


async def _with_usage(
    request: Request, principal: Principal, subject: str | None, call: Callable[[TokenService], T]
) -> tuple[T, Usage]:
    """``call`` on the service, then the account's usage, in the thread pool."""
    service = state_of(request).service

    def both() -> tuple[T, Usage]:
        result = call(service)
        return result, service.usage(principal, subject=subject)

    return await in_thread(both)


def _hold_id(request: Request) -> str:
    hold_id: str = request.path_params["hold_id"]
    return hold_id


async def reserve(request: Request) -> JSONResponse:
    return await reserve_for(request, principal_of(request), None)


async def settle(request: Request) -> JSONResponse:
    return await settle_for(request, principal_of(request), None)


async def release(request: Request) -> JSONResponse:
    return await release_for(request, principal_of(request), None)


async def list_holds(request: Request) -> JSONResponse:
    return await holds_of(request, principal_of(request), None)


async def read_hold(request: Request) -> JSONResponse:
    return await hold_of(request, principal_of(request), None)


async def reserve_for(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    """A hold on ``subject``'s account (``None``: the caller's own): 201, or 200 when it
    repeats an earlier reserve of the same id."""
    command = await RESERVE_COMMAND.read(request)

    def call(service: TokenService) -> Hold:
        return service.reserve(principal, command, subject=subject)

    hold = await in_thread(call, state_of(request).service)
    return JSONResponse(hold_json(hold), status_code=200 if hold.replayed else 201)


async def settle_for(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    """Close one of ``subject``'s holds with the amount actually used."""
    hold_id = _hold_id(request)
    command = await SETTLE_COMMAND.read(request)

    def call(service: TokenService) -> Hold:
        return service.settle(principal, hold_id, command, subject=subject)

    return await _hold(request, call)


async def release_for(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    """Close one of ``subject``'s holds with nothing used; the body is empty or ``{}``."""
    hold_id = _hold_id(request)
    await read_optional_object(request, {})

    def call(service: TokenService) -> Hold:
        return service.release(principal, hold_id, subject=subject)

    return await _hold(request, call)


async def holds_of(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    """``subject``'s open holds, oldest first, with its usage."""

    def call(service: TokenService) -> Sequence[Hold]:
        return service.holds(principal, subject=subject)

    return JSONResponse(holds_json(*await _with_usage(request, principal, subject, call)))


async def hold_of(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    """One of ``subject``'s holds in any status, with its usage; unknown: 404."""
    hold_id = _hold_id(request)

    def call(service: TokenService) -> Hold:
        return service.hold(principal, hold_id, subject=subject)

    return await _hold(request, call)


async def admin_reserve(request: Request) -> JSONResponse:
    return await reserve_for(request, *admin_of(request))


async def admin_settle(request: Request) -> JSONResponse:
    return await settle_for(request, *admin_of(request))


async def admin_release(request: Request) -> JSONResponse:
    return await release_for(request, *admin_of(request))


async def admin_list_holds(request: Request) -> JSONResponse:
    return await holds_of(request, *admin_of(request))


async def admin_read_hold(request: Request) -> JSONResponse:
    return await hold_of(request, *admin_of(request))


# -- OpenAPI ------------------------------------------------------------------------

#: The hold id the examples use: unguessable, as a client's own ids should be. The first
#: reserve example places it, so the hold routes' prefilled id then finds that hold.
EXAMPLE_HOLD_ID = "9b2d6c1e-4f7a-4e3b-8c5d-2a1f0e9d8c7b"

_HOLD_PROPERTIES = HOLD.properties()

#: The ``{hold_id}`` path parameter, for every route of one hold.
HOLD_ID_PARAMETER = {
    "name": "hold_id",
    "in": "path",
    "required": True,
    "description": (
        "The hold's id, percent-encoded (`/` as `%2F`, `%` as `%25`). Decoded exactly once."
    ),
    "schema": _HOLD_PROPERTIES["hold_id"],
    "example": EXAMPLE_HOLD_ID,
}


def _schemas(_catalog: PlanCatalog) -> dict[str, Any]:
    return {
        "Hold": {
            "type": "object",
            "required": list(_HOLD_PROPERTIES),
            "properties": _HOLD_PROPERTIES,
        },
        "HoldAnswer": {
            "type": "object",
            "required": [*_HOLD_PROPERTIES, "replayed", *USAGE_FIELDS],
            "properties": {
                **USAGE_PROPERTIES,
                **_HOLD_PROPERTIES,
                "replayed": {
                    "type": "boolean",
                    "description": "True when this repeats an earlier answer and changed nothing.",
                },
                **PRICED_PROPERTIES,
            },
        },
        "HoldList": {
            "type": "object",
            "required": ["holds", *USAGE_FIELDS],
            "properties": {
                **USAGE_PROPERTIES,
                "holds": {"type": "array", "items": ref("Hold")},
            },
        },
        "ReserveRequest": RESERVE_COMMAND.schema(
            description="Exactly one of `amount` (credits) or `estimate` (a model call "
            "not yet made, held at the most it can cost); neither or both is a 422."
        ),
        "SettleRequest": SETTLE_COMMAND.schema(
            description="Exactly one of `amount` (credits) or `usage` (the call's actual "
            "usage, priced by the server's prices); neither or both is a 422."
        ),
        "ReleaseRequest": {"type": "object", "additionalProperties": False, "properties": {}},
        **HOLD_ERROR_SCHEMAS,
    }


_RESERVE_BODY = body(
    "ReserveRequest",
    "How many tokens (or a call's estimate), and optionally the id and TTL.",
    {
        "amount": example(
            "Credits, under your own hold id",
            {"amount": 500, "hold_id": EXAMPLE_HOLD_ID, "ttl_seconds": 300},
        ),
        "estimate": example(
            "The most a model call can cost (its prompt and max_tokens), under a new id",
            {
                "estimate": {
                    "model": EXAMPLE_MODEL,
                    "input_tokens": 250,
                    "max_output_tokens": 500,
                }
            },
        ),
    },
)
_SETTLE_BODY = body(
    "SettleRequest",
    "The tokens actually used (0 or more, even above the hold), or the call's usage.",
    {"amount": example("Credits actually used", {"amount": 420}), **USAGE_EXAMPLES},
)
_RELEASE_BODY = {
    **body("ReleaseRequest", "Nothing: an empty body or `{}`.", {"empty": example("Nothing", {})}),
    "required": False,
}


def _named(operation_id: str, *, admin: bool) -> str:
    """The caller's ``operationId``, or its admin variant's (``adminReserveHold``)."""
    return f"admin{operation_id[:1].upper()}{operation_id[1:]}" if admin else operation_id


def _operations(prefix: str, tag: str, *, admin: bool) -> list[Operation]:
    """The five hold operations under ``prefix`` (the caller's, or an admin's for the
    path's subject)."""
    who = " (admin)" if admin else ""
    subject = [SUBJECT_PARAMETER] if admin else []
    one = [*subject, HOLD_ID_PARAMETER]
    forbidden = ["403"] if admin else []
    return [
        Operation(
            "POST",
            f"{prefix}/holds",
            admin_reserve if admin else reserve,
            operation(
                _named("reserveHold", admin=admin),
                f"Hold tokens before a model call{who}",
                response("The same id and amount reserved before: its hold.", "HoldAnswer"),
                tag=tag,
                parameters=subject,
                request=_RESERVE_BODY,
                failures=["400", "402", *forbidden, "503"],
                answers=CONFLICT_ON_RESERVE,
            ),
        ),
        Operation(
            "GET",
            f"{prefix}/holds",
            admin_list_holds if admin else list_holds,
            operation(
                _named("listHolds", admin=admin),
                f"The open holds, oldest first{who}",
                response("The open holds and the usage.", "HoldList"),
                tag=tag,
                parameters=subject,
                failures=[*forbidden, "422", "503"],
            ),
        ),
        Operation(
            "GET",
            f"{prefix}/holds/{{hold_id}}",
            admin_read_hold if admin else read_hold,
            operation(
                _named("getHold", admin=admin),
                f"One hold, in any status{who}",
                response("The hold as of now, and the usage.", "HoldAnswer"),
                tag=tag,
                parameters=one,
                failures=[*forbidden, "422", "503"],
                answers={"404": NOT_FOUND},
            ),
        ),
        Operation(
            "POST",
            f"{prefix}/holds/{{hold_id}}/settle",
            admin_settle if admin else settle,
            operation(
                _named("settleHold", admin=admin),
                f"Close a hold with the tokens actually used{who}",
                response(
                    "The settled hold (a repeat answers the first result, `replayed`).",
                    "HoldAnswer",
                ),
                tag=tag,
                parameters=one,
                request=_SETTLE_BODY,
                failures=["400", *forbidden, "503"],
                answers=CONFLICT_ON_CLOSE,
            ),
        ),
        Operation(
            "POST",
            f"{prefix}/holds/{{hold_id}}/release",
            admin_release if admin else release,
            operation(
                _named("releaseHold", admin=admin),
                f"Close a hold with nothing used{who}",
                response(
                    "The released hold (or the expired one as it is; a repeat answers the "
                    "first result, `replayed`).",
                    "HoldAnswer",
                ),
                tag=tag,
                parameters=one,
                request=_RELEASE_BODY,
                failures=[*forbidden, "503"],
                answers=CONFLICT_ON_CLOSE,
            ),
        ),
    ]


RESOURCE = Resource(
    operations=[
        *_operations("/api/tokens", "holds", admin=False),
        *_operations("/api/admin/accounts/{subject}", "admin", admin=True),
    ],
    schemas=_schemas,
)
