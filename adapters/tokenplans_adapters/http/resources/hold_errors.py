"""What the hold routes answer when a hold is missing, taken or already done: the 404
and 409 answers of their operations, and the schemas of those bodies (rendered by
:mod:`tokenplans_adapters.http.errors` from the same hold shape, ``snapshot.HOLD``)."""

from __future__ import annotations

from typing import Any

from tokenplans import MAX_OPEN_HOLDS, HoldStatus
from tokenplans_adapters.http.openapi import CHARGED, COUNT, JSON, nullable, ref, response
from tokenplans_adapters.http.snapshot import HOLD, HOLD_CONFLICT_FIELDS, HOLD_IN_PROGRESS_FIELDS

NOT_FOUND = {
    "description": (
        "No such route, or no hold with this id on this account (`hold not found`, "
        "with `hold_id`; another subject's hold is never found)."
    ),
    "content": {JSON: {"schema": {"anyOf": [ref("HoldNotFound"), ref("Error")]}}},
}
CONFLICT_ON_CLOSE = {
    "404": NOT_FOUND,
    "409": response(
        "The hold is already closed another way (settled, released or with another "
        "amount); `status` is its final state and nothing changed.",
        "HoldConflict",
    ),
}
CONFLICT_ON_RESERVE = {
    "201": response("The hold, just placed, and the usage after it.", "HoldAnswer"),
    "409": {
        "description": (
            "The id is already your hold for another request (`hold conflict`), your "
            "hold under this id is closed (`already processed`: never treat it as a "
            f"fresh hold), or the account already has {MAX_OPEN_HOLDS} open holds "
            "(`too many open holds`)."
        ),
        "content": {
            JSON: {
                "schema": {
                    "anyOf": [
                        ref("HoldConflict"),
                        ref("AlreadyProcessed"),
                        ref("TooManyHolds"),
                    ]
                }
            }
        },
    },
}

#: The schemas of the hold routes' 404 and 409 bodies.
HOLD_ERROR_SCHEMAS: dict[str, Any] = {
    "HoldNotFound": {
        "type": "object",
        "required": ["error", "hold_id"],
        "properties": {"error": {"const": "hold not found"}, "hold_id": {"type": "string"}},
    },
    "HoldConflict": {
        "type": "object",
        "required": ["error", "hold_id", "status"],
        "properties": {
            "error": {"const": "hold conflict"},
            **HOLD.properties(HOLD_CONFLICT_FIELDS),
            "message": {"type": "string"},
        },
    },
    "AlreadyProcessed": {
        "type": "object",
        "required": ["error", "status"],
        "description": "The first request with this hold id or idempotency key has "
        "finished; its result is here and nothing was done again.",
        "properties": {
            "error": {"const": "already processed"},
            "hold_id": {"type": "string"},
            "idempotency_key": {"type": "string"},
            "status": {
                "type": "string",
                "enum": [*(s.value for s in HoldStatus if s is not HoldStatus.OPEN), "debited"],
            },
            "settled": nullable(COUNT),
            "amount": CHARGED,
            "message": {"type": "string"},
        },
    },
    "RequestInProgress": {
        "type": "object",
        "required": ["error", "hold_id", "expires_at"],
        "description": "The first request with this hold id is still in flight (its "
        "hold is open); retry after `Retry-After` seconds.",
        "properties": {
            "error": {"const": "request in progress"},
            **HOLD.properties(HOLD_IN_PROGRESS_FIELDS),
            "message": {"type": "string"},
        },
    },
    "TooManyHolds": {
        "type": "object",
        "required": ["error", "limit"],
        "properties": {
            "error": {"const": "too many open holds"},
            "limit": COUNT,
            "message": {"type": "string"},
        },
    },
}
