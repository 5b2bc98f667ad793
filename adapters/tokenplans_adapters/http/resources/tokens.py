"""The caller's own account: usage, set-plan, consume and the ledger.

A consume debits an ``amount``, or the credits a model call's ``usage`` costs (priced by
the service's pricer: :mod:`.pricing` reads the usage); a priced answer, and a priced
ledger entry, add ``credits``, ``price_version`` and the normalised ``usage``.

The bodies of set-plan, consume and the ledger take the subject to act on, so the admin
variants (:mod:`.admin`) are the same handlers over the path's subject.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tokenplans import (
    MAX_PAGE_SIZE,
    Consume,
    DebitReceipt,
    EntryKind,
    HistoryPage,
    LedgerEntry,
    PlanCatalog,
    PlanChange,
    Principal,
    SetPlan,
    Usage,
)
from tokenplans_adapters.http.auth import principal_of
from tokenplans_adapters.http.bodies import MAX_CURSOR_LENGTH, query_int, query_text
from tokenplans_adapters.http.offload import in_thread
from tokenplans_adapters.http.openapi import (
    CHARGED,
    TIME,
    body,
    example,
    nullable,
    operation,
    ref,
    response,
)
from tokenplans_adapters.http.resources.pricing import (
    CALL_VALUES,
    PRICED_PROPERTIES,
    USAGE_EXAMPLES,
    priced_json,
)
from tokenplans_adapters.http.routing import Operation, Resource
from tokenplans_adapters.http.shapes import Body
from tokenplans_adapters.http.snapshot import (
    ENTRY_FACT_PROPERTIES,
    ENTRY_SNAPSHOT_FIELDS,
    USAGE_ANSWER_PROPERTIES,
    USAGE_FIELDS,
    USAGE_PROPERTIES,
    entry_facts_json,
    entry_snapshot_json,
    iso,
    usage_answer_json,
    usage_json,
)
from tokenplans_adapters.http.state import state_of

#: A ledger page's size when the query names none.
DEFAULT_PAGE_SIZE = 50

SET_PLAN_COMMAND = Body(SetPlan)
CONSUME_COMMAND = Body(Consume, one_of=("amount", "usage"), nested=CALL_VALUES)


# -- rendering --------------------------------------------------------------------


def plan_change_json(change: PlanChange) -> dict[str, Any]:
    """The original service's set-plan response: ``status``, ``message`` and the usage after."""
    return {"status": "ok", "message": change.message, **usage_json(change.usage)}


def receipt_json(receipt: DebitReceipt) -> dict[str, Any]:
    return {
        **usage_json(receipt.usage),
        "amount": receipt.amount,
        "idempotency_key": receipt.idempotency_key,
        "replayed": receipt.replayed,
        **({} if receipt.priced is None else priced_json(receipt.priced)),
    }


#: An entry's own fields in the order the wire shows them: the facts' fields where the
#: ledger has always shown them, a new facts field after them all. Every one is present
#: on every entry (``null`` where its kind has none).
_OWN_FIELDS = (
    "version",
    "kind",
    "at",
    "amount",
    "quota_delta",
    "used_delta",
    "idempotency_key",
    "payment_id",
    "actor",
    "message",
    "held_delta",
    "hold_id",
    "overage",
)
_BLANK_ENTRY: dict[str, Any] = dict.fromkeys(
    (*_OWN_FIELDS, *(name for name in ENTRY_FACT_PROPERTIES if name not in _OWN_FIELDS))
)


def entry_json(entry: LedgerEntry) -> dict[str, Any]:
    """The entry's own fields, its kind's facts flattened among them, then its priced
    call and the snapshot after it."""
    return {
        **_BLANK_ENTRY,
        "version": entry.version,
        "kind": entry.kind.value,
        "at": iso(entry.at),
        "amount": entry.amount,
        "quota_delta": entry.quota_delta,
        "used_delta": entry.used_delta,
        "actor": entry.actor,
        "message": entry.message,
        "held_delta": entry.held_delta,
        **entry_facts_json(entry.facts),
        **(_UNPRICED if entry.priced is None else priced_json(entry.priced)),
        **entry_snapshot_json(Usage.of(entry.after)),
    }


#: What a ledger entry that was not priced shows in a priced entry's fields.
_UNPRICED: dict[str, Any] = dict.fromkeys(PRICED_PROPERTIES)


def page_json(page: HistoryPage) -> dict[str, Any]:
    entries = [entry_json(entry) for entry in page.entries]
    return {"entries": entries, "next_cursor": page.next_cursor}


# -- handlers ---------------------------------------------------------------------


async def usage(request: Request) -> JSONResponse:
    principal = principal_of(request)
    service = state_of(request).service
    result = await in_thread(service.usage, principal)
    return JSONResponse(usage_answer_json(result, service.catalog))


async def set_plan(request: Request) -> JSONResponse:
    return await set_plan_of(request, principal_of(request), None)


async def consume(request: Request) -> JSONResponse:
    return await consume_from(request, principal_of(request), None)


async def ledger(request: Request) -> JSONResponse:
    return await ledger_of(request, principal_of(request), None)


async def set_plan_of(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    """Set-plan on ``subject``'s account (``None``: the caller's own)."""
    command = await SET_PLAN_COMMAND.read(request)
    service = state_of(request).service

    def call() -> PlanChange:
        return service.set_plan(principal, command, subject=subject)

    return JSONResponse(plan_change_json(await in_thread(call)))


async def consume_from(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    """A debit from ``subject``'s account (``None``: the caller's own)."""
    command = await CONSUME_COMMAND.read(request)
    service = state_of(request).service

    def call() -> DebitReceipt:
        return service.consume(principal, command, subject=subject)

    return JSONResponse(receipt_json(await in_thread(call)))


async def ledger_of(request: Request, principal: Principal, subject: str | None) -> JSONResponse:
    """One page of ``subject``'s ledger (``None``: the caller's own), newest first. The
    route refuses query parameters other than :data:`PAGE_PARAMETERS` before this runs."""
    cursor = query_text(request, "cursor", MAX_CURSOR_LENGTH)
    limit = query_int(request, "limit", DEFAULT_PAGE_SIZE)
    service = state_of(request).service

    def call() -> HistoryPage:
        return service.history(principal, subject=subject, cursor=cursor, limit=limit)

    return JSONResponse(page_json(await in_thread(call)))


# -- OpenAPI ------------------------------------------------------------------------

#: The ledger's query parameters, for every ledger route.
PAGE_PARAMETERS = [
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "`next_cursor` of the previous page; omitted or empty: the newest.",
        "schema": {"type": "string", "pattern": "^[0-9]{0,18}$"},
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_PAGE_SIZE,
            "default": DEFAULT_PAGE_SIZE,
        },
    },
]


#: A consume's body in each form, for the caller's consume and an admin's.
CONSUME_BODY = body(
    "ConsumeRequest",
    "How many tokens, or a model call's usage; an optional idempotency key.",
    {
        "amount": example(
            "Credits, retried safely with an idempotency key",
            {"amount": 10, "idempotency_key": "5f0e7c2a-93b1-4d6e-a8f4-1c2b3d4e5f60"},
        ),
        **USAGE_EXAMPLES,
    },
)


def _schemas(catalog: PlanCatalog) -> dict[str, Any]:
    """The account's schemas; the plan enum (and its example: the default plan, which
    anyone may set) come from the catalog being served."""
    plan_id = {"type": "string", "enum": [plan.id for plan in catalog]}
    return {
        "Usage": {
            "type": "object",
            "required": list(USAGE_FIELDS),
            "properties": dict(USAGE_PROPERTIES),
        },
        "UsageAnswer": {
            "type": "object",
            "description": "The usage, and the features of the account's plan.",
            "required": [*USAGE_FIELDS, "features"],
            "properties": dict(USAGE_ANSWER_PROPERTIES),
        },
        "SetPlanRequest": SET_PLAN_COMMAND.schema(
            examples=[{"plan": catalog.default_plan.id}], overrides={"plan": plan_id}
        ),
        "SetPlanResponse": {
            "type": "object",
            "required": ["status", "message", *USAGE_FIELDS],
            "properties": {
                "status": {"const": "ok"},
                "message": {"type": "string"},
                **USAGE_PROPERTIES,
            },
        },
        "ConsumeRequest": CONSUME_COMMAND.schema(
            description="Exactly one of `amount` (credits) or `usage` (a model call, "
            "priced by the server's prices); neither or both is a 422. A `null` field "
            "counts as absent."
        ),
        "ConsumeResponse": {
            "type": "object",
            "required": ["amount", "replayed", "idempotency_key", *USAGE_FIELDS],
            "properties": {
                **USAGE_PROPERTIES,
                "amount": CHARGED,
                "idempotency_key": CONSUME_COMMAND.property("idempotency_key"),
                "replayed": {
                    "type": "boolean",
                    "description": "True when this is the remembered answer to a retry.",
                },
                **PRICED_PROPERTIES,
            },
        },
        "LedgerEntry": {
            "type": "object",
            "required": ["version", "kind", "at", "quota_delta", "used_delta", "plan"],
            "properties": {
                "version": {"type": "integer", "minimum": 1},
                "kind": {"type": "string", "enum": [kind.value for kind in EntryKind]},
                "at": TIME,
                "amount": nullable({"type": "integer"}),
                "quota_delta": {"type": "integer"},
                "used_delta": {"type": "integer"},
                "actor": nullable({"type": "string"}),
                "message": {"type": "string"},
                "held_delta": {
                    "type": "integer",
                    "description": "How the entry moved `token_held` (holds only; else 0).",
                },
                **ENTRY_FACT_PROPERTIES,
                **{name: nullable(schema) for name, schema in PRICED_PROPERTIES.items()},
                **{name: USAGE_PROPERTIES[name] for name in ENTRY_SNAPSHOT_FIELDS},
            },
        },
        "LedgerPage": {
            "type": "object",
            "required": ["entries", "next_cursor"],
            "properties": {
                "entries": {"type": "array", "items": ref("LedgerEntry")},
                "next_cursor": nullable({"type": "string"}),
            },
        },
    }


RESOURCE = Resource(
    operations=[
        Operation(
            "GET",
            "/api/tokens/usage",
            usage,
            operation(
                "getUsage",
                "The caller's usage",
                response("Usage now, with due resets applied.", "UsageAnswer"),
                tag="tokens",
                failures=["503"],
            ),
        ),
        Operation(
            "POST",
            "/api/tokens/set-plan",
            set_plan,
            operation(
                "setPlan",
                "Change the caller's plan (downgrade or same plan; upgrades need payment)",
                response("The plan after the change.", "SetPlanResponse"),
                tag="tokens",
                request=body("SetPlanRequest", "The target plan."),
                failures=["400", "403", "409", "503"],
            ),
        ),
        Operation(
            "POST",
            "/api/tokens/consume",
            consume,
            operation(
                "consumeTokens",
                "Debit tokens from the caller's quota",
                response("Usage after the debit.", "ConsumeResponse"),
                tag="tokens",
                request=CONSUME_BODY,
                failures=["400", "402", "403", "409", "503"],
            ),
        ),
        Operation(
            "GET",
            "/api/tokens/ledger",
            ledger,
            operation(
                "getLedger",
                "The caller's ledger, newest first",
                response("One page of entries.", "LedgerPage"),
                tag="tokens",
                parameters=PAGE_PARAMETERS,
                failures=["422", "503"],
            ),
        ),
    ],
    schemas=_schemas,
)
