"""The OpenAPI 3.1 document, assembled from one fragment per operation.

Written by hand rather than generated: the endpoints validate by hand too, and a
document that is data is easy to read, to diff and to extend. ``create_app`` pairs each
route with its fragment (:class:`Operation`), so a route without a description cannot be
added by accident; an extension (payments) brings its own fragments and schemas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import attrs

from tokenplans import ADMIN_SCOPE, PlanCatalog

JSON = "application/json"
MAX_AMOUNT = 10**12
MAX_KEY_LENGTH = 255
MAX_PAGE_SIZE = 200


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def body(schema: str, description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {JSON: {"schema": ref(schema)}},
    }


def response(description: str, schema: str = "Error") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ref(schema)}}}


#: The error answers every operation may give, by the situations that cause them.
ERRORS: Mapping[str, dict[str, Any]] = {
    "400": response("Unknown plan id (`invalid plan`)."),
    "401": {
        **response("Missing, non-Bearer, malformed, expired or badly signed token."),
        "headers": {
            "WWW-Authenticate": {"description": "Always `Bearer`.", "schema": {"type": "string"}}
        },
    },
    "402": response("Not enough tokens remain; nothing was debited.", "InsufficientTokens"),
    "403": response("The caller may not do this; `reason` says why.", "Forbidden"),
    "404": response("No such route."),
    "405": response("The route does not take this method."),
    "408": response("The request body did not arrive in full within the configured time."),
    "409": response("The idempotency key was first used for a different amount."),
    "413": response("The request body is larger than the configured limit."),
    "415": response("The request's `Content-Type` is present and not JSON."),
    "422": response(
        "Malformed or too deeply nested JSON, a number too long, a wrong field type, "
        "an unknown field or a bad value."
    ),
    "500": response("Unexpected error; `request_id` identifies it in the server log."),
    "503": response("The database is unavailable or the account is too contended; retry."),
}
_ALWAYS = ("404", "405", "500")
#: What any operation that reads a JSON body may answer because of the body itself.
BODY_ERRORS = ("408", "413", "415", "422")


def errors(*codes: str) -> dict[str, Any]:
    """The listed error responses plus the ones any route can give."""
    return {code: ERRORS[code] for code in sorted({*codes, *_ALWAYS})}


@attrs.frozen
class Operation:
    """One method on one path: what the OpenAPI document says about it."""

    method: str
    path: str
    spec: Mapping[str, Any]


def document(
    catalog: PlanCatalog,
    operations: Iterable[Operation],
    *,
    title: str,
    extra_paths: Mapping[str, Any] = {},
    extra_schemas: Mapping[str, Any] = {},
) -> dict[str, Any]:
    """The whole document: ``operations`` plus any extension's ready-made paths."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = dict(operation.spec)
    for path, item in extra_paths.items():
        paths.setdefault(path, {}).update(item)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": _version(),
            "description": (
                "Subscription plans and per-user token quotas. Authenticate with "
                "`Authorization: Bearer <token>`; admin routes need the "
                f"`{ADMIN_SCOPE}` scope. Times are ISO 8601 UTC with a `Z` suffix."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {**schemas(catalog), **extra_schemas},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _version() -> str:
    try:
        return metadata.version("tokenplans")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare tree
        return "0.0.0"


def _nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"anyOf": [dict(schema), {"type": "null"}]}


_TIME = {"type": "string", "format": "date-time"}
_COUNT = {"type": "integer", "minimum": 0}


def schemas(catalog: PlanCatalog) -> dict[str, Any]:
    """Component schemas; the plan enum comes from the catalog being served."""
    plan_id = {"type": "string", "enum": [plan.id for plan in catalog]}
    usage_properties = {
        "plan": {"type": "string"},
        "token_quota": _COUNT,
        "token_used": _COUNT,
        "remaining": _COUNT,
        "plan_end_at": _nullable(_TIME),
        "period_start": _TIME,
        "period_end": _TIME,
        "subject": {"type": "string"},
    }
    amount = {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT}
    key = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
            },
        },
        "Forbidden": {
            "type": "object",
            "required": ["error", "reason"],
            "properties": {
                "error": {"const": "forbidden"},
                "reason": {
                    "type": "string",
                    "description": "`not_yours`, `admin_only` or `payment_required`.",
                },
                "message": {"type": "string"},
            },
        },
        "InsufficientTokens": {
            "type": "object",
            "required": ["error", "remaining"],
            "properties": {
                "error": {"const": "insufficient tokens"},
                "remaining": _COUNT,
                "requested": amount,
            },
        },
        "Usage": {
            "type": "object",
            "required": list(usage_properties),
            "properties": usage_properties,
        },
        "SetPlanRequest": {
            "type": "object",
            "required": ["plan"],
            "additionalProperties": False,
            "properties": {
                "plan": plan_id,
                "reset_used": {
                    "type": ["boolean", "null"],
                    "description": "Admins only: also set used tokens to 0.",
                },
            },
        },
        "SetPlanResponse": {
            "type": "object",
            "required": ["status", "message", *usage_properties],
            "properties": {
                "status": {"const": "ok"},
                "message": {"type": "string"},
                **usage_properties,
            },
        },
        "ConsumeRequest": {
            "type": "object",
            "required": ["amount"],
            "additionalProperties": False,
            "properties": {"amount": amount, "idempotency_key": _nullable(key)},
        },
        "ConsumeResponse": {
            "type": "object",
            "required": ["amount", "replayed", "idempotency_key", *usage_properties],
            "properties": {
                **usage_properties,
                "amount": amount,
                "idempotency_key": _nullable(key),
                "replayed": {
                    "type": "boolean",
                    "description": "True when this is the remembered answer to a retry.",
                },
            },
        },
        "GrantRequest": {
            "type": "object",
            "required": ["amount"],
            "additionalProperties": False,
            "properties": {"amount": amount},
        },
        "LedgerEntry": {
            "type": "object",
            "required": ["version", "kind", "at", "quota_delta", "used_delta", "plan"],
            "properties": {
                "version": {"type": "integer", "minimum": 1},
                "kind": {
                    "type": "string",
                    "enum": [
                        "opened",
                        "period_reset",
                        "term_expired",
                        "plan_changed",
                        "renewed",
                        "debited",
                        "granted",
                    ],
                },
                "at": _TIME,
                "amount": _nullable({"type": "integer"}),
                "quota_delta": {"type": "integer"},
                "used_delta": {"type": "integer"},
                "idempotency_key": _nullable({"type": "string"}),
                "payment_id": _nullable({"type": "string"}),
                "actor": _nullable({"type": "string"}),
                "message": {"type": "string"},
                "plan": {"type": "string"},
                "token_quota": _COUNT,
                "token_used": _COUNT,
                "remaining": _COUNT,
                "plan_end_at": _nullable(_TIME),
            },
        },
        "LedgerPage": {
            "type": "object",
            "required": ["entries", "next_cursor"],
            "properties": {
                "entries": {"type": "array", "items": ref("LedgerEntry")},
                "next_cursor": _nullable({"type": "string"}),
            },
        },
        "Plan": {
            "type": "object",
            "required": ["id", "name", "price", "currency", "tokens", "duration_days", "rank"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "price": {**_COUNT, "description": "Minor units (paise for INR)."},
                "currency": {"type": "string"},
                "tokens": _COUNT,
                "duration_days": _nullable({"type": "integer", "minimum": 1}),
                "rank": _COUNT,
                "default": {"type": "boolean"},
            },
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


# -- the fragments ------------------------------------------------------------------

_SECURED: list[dict[str, list[str]]] = [{"bearer": []}]
_SUBJECT = {
    "name": "subject",
    "in": "path",
    "required": True,
    "description": (
        "The account's subject (a JWT `sub`, or a user id as text), percent-encoded: "
        "`/` as `%2F`, `%` as `%25`, a space as `%20`. Decoded exactly once."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_PAGE = [
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
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 50},
    },
]


def _op(
    summary: str,
    ok: dict[str, Any],
    *,
    tag: str,
    secured: bool = True,
    request: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    failures: Iterable[str] = (),
) -> dict[str, Any]:
    spec: dict[str, Any] = {"summary": summary, "tags": [tag]}
    if parameters:
        spec["parameters"] = parameters
    if request is not None:
        spec["requestBody"] = request
    if secured:
        spec["security"] = _SECURED
    codes = [*failures, "401"] if secured else list(failures)
    if request is not None:
        codes += BODY_ERRORS
    spec["responses"] = {"200": ok, **errors(*codes)}
    return spec


ROOT = _op("Name and base URL", response("The API's name.", "Root"), tag="meta", secured=False)
HEALTH = _op("Liveness", response("The process answers.", "Health"), tag="meta", secured=False)
READY = _op(
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
PLANS = _op("The plan catalog", response("Plans by rank.", "Plans"), tag="plans", secured=False)
OPENAPI = {
    "summary": "This document",
    "tags": ["meta"],
    "responses": {
        "200": {"description": "OpenAPI 3.1.", "content": {JSON: {"schema": {"type": "object"}}}},
        **errors(),
    },
}
DOCS = {
    "summary": "Swagger UI for this document (served locally, no CDN)",
    "tags": ["meta"],
    "responses": {
        "200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}},
        **errors(),
    },
}
USAGE = _op(
    "The caller's usage",
    response("Usage now, with due resets applied.", "Usage"),
    tag="tokens",
    failures=["503"],
)
SET_PLAN = _op(
    "Change the caller's plan (downgrade or same plan; upgrades need payment)",
    response("The plan after the change.", "SetPlanResponse"),
    tag="tokens",
    request=body("SetPlanRequest", "The target plan."),
    failures=["400", "403", "503"],
)
CONSUME = _op(
    "Debit tokens from the caller's quota",
    response("Usage after the debit.", "ConsumeResponse"),
    tag="tokens",
    request=body("ConsumeRequest", "How many tokens, and an optional idempotency key."),
    failures=["402", "403", "409", "503"],
)
LEDGER = _op(
    "The caller's ledger, newest first",
    response("One page of entries.", "LedgerPage"),
    tag="tokens",
    parameters=_PAGE,
    failures=["422", "503"],
)
ADMIN_USAGE = _op(
    "Any account's usage (admin)",
    response("Usage now.", "Usage"),
    tag="admin",
    parameters=[_SUBJECT],
    failures=["403", "422", "503"],
)
ADMIN_SET_PLAN = _op(
    "Set any account's plan, upgrades included (admin)",
    response("The plan after the change.", "SetPlanResponse"),
    tag="admin",
    parameters=[_SUBJECT],
    request=body("SetPlanRequest", "The target plan, and whether to zero usage."),
    failures=["400", "403", "503"],
)
ADMIN_GRANT = _op(
    "Add tokens to an account's current period (admin)",
    response("Usage after the grant.", "Usage"),
    tag="admin",
    parameters=[_SUBJECT],
    request=body("GrantRequest", "How many tokens."),
    failures=["403", "503"],
)
ADMIN_CONSUME = _op(
    "Debit tokens from any account (admin)",
    response("Usage after the debit.", "ConsumeResponse"),
    tag="admin",
    parameters=[_SUBJECT],
    request=body("ConsumeRequest", "How many tokens, and an optional idempotency key."),
    failures=["402", "403", "409", "503"],
)
ADMIN_LEDGER = _op(
    "Any account's ledger, newest first (admin)",
    response("One page of entries.", "LedgerPage"),
    tag="admin",
    parameters=[_SUBJECT, *_PAGE],
    failures=["403", "422", "503"],
)
