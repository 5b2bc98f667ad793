"""The OpenAPI 3.1 document builder and the components every resource shares.

Written by hand rather than generated: the endpoints validate by hand too, and a
document that is data is easy to read, to diff and to extend. Each resource module in
:mod:`.resources` pairs its routes with their fragments and brings its own schemas
(:class:`~.routing.Resource`), so a route without a description cannot be added by
accident; this module only assembles them, with the shared error answers (:func:`errors`),
the ``Error`` schemas they refer to and the bearer scheme.

Every operation has a stable, unique ``operationId`` (camelCase: ``getUsage``,
``consumeTokens``), the name a generated client gives its method; every request body
has examples the server accepts (a test sends each one), which Swagger UI prefills.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from tokenplans import ADMIN_SCOPE, MAX_AMOUNT, PlanCatalog

from .routing import Resource

JSON = "application/json"
#: What a secured operation names in ``security``: the one bearer scheme below.
SECURED: list[dict[str, list[str]]] = [{"bearer": []}]
TIME = {"type": "string", "format": "date-time"}
COUNT = {"type": "integer", "minimum": 0}
#: A debit's or grant's amount, as the core bounds it.
AMOUNT = {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT}
#: What an answer says was debited or held: an amount, or a priced call's credits (0 for
#: a call that cost nothing).
CHARGED = {"type": "integer", "minimum": 0, "maximum": MAX_AMOUNT}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"anyOf": [dict(schema), {"type": "null"}]}


def example(summary: str, value: Any) -> dict[str, Any]:
    """One named example (an OpenAPI Example Object): Swagger UI lists it by ``summary``."""
    return {"summary": summary, "value": value}


def body(
    schema: str, description: str, examples: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A required JSON request body of ``schema``, with its named ``examples`` (made by
    :func:`example`; without them, the schema's own ``examples`` are the body's)."""
    media: dict[str, Any] = {"schema": ref(schema)}
    if examples:
        media["examples"] = dict(examples)
    return {"required": True, "description": description, "content": {JSON: media}}


def response(description: str, schema: str = "Error") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ref(schema)}}}


def refusal(error: str, reasons: str) -> dict[str, Any]:
    """The schema of an error answer whose ``reason`` says which refusal it is."""
    return {
        "type": "object",
        "required": ["error", "reason"],
        "properties": {
            "error": {"const": error},
            "reason": {"type": "string", "description": reasons},
            "message": {"type": "string"},
        },
    }


#: The error answers every operation may give, by the situations that cause them.
ERRORS: Mapping[str, dict[str, Any]] = {
    "400": response(
        "Unknown plan id (`invalid plan`, with `plan`), or a model the prices do not cover "
        "(`unknown model`, with `model`; nothing was charged)."
    ),
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
    "409": response(
        "The idempotency key was first used for another request (another amount, plan or "
        "kind of request)."
    ),
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

#: The schemas :data:`ERRORS` refers to.
ERROR_SCHEMAS: Mapping[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "request_id": {"type": "string"},
        },
    },
    "Forbidden": refusal("forbidden", "`not_yours`, `admin_only` or `payment_required`."),
    "InsufficientTokens": {
        "type": "object",
        "required": ["error", "remaining"],
        "properties": {
            "error": {"const": "insufficient tokens"},
            "remaining": COUNT,
            "requested": AMOUNT,
        },
    },
}


def errors(*codes: str) -> dict[str, Any]:
    """The listed error responses plus the ones any route can give."""
    return {code: ERRORS[code] for code in sorted({*codes, *_ALWAYS})}


def operation(
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    *,
    tag: str,
    secured: bool = True,
    request: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    failures: Iterable[str] = (),
    answers: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One operation's fragment: its ``operationId``, the 200 answer ``ok`` plus the errors
    it may give (``failures``, a 401 when ``secured``, the body's own when it reads a
    ``request``); ``answers`` adds statuses or says more than :data:`ERRORS` about some."""
    spec: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if parameters:
        spec["parameters"] = parameters
    if request is not None:
        spec["requestBody"] = request
    if secured:
        spec["security"] = SECURED
    codes = [*failures, "401"] if secured else list(failures)
    if request is not None:
        codes += BODY_ERRORS
    responses = {"200": ok, **errors(*codes), **(answers or {})}
    spec["responses"] = dict(sorted(responses.items()))
    return spec


def document(
    catalog: PlanCatalog,
    resources: Iterable[Resource],
    *,
    title: str,
    extra_paths: Mapping[str, Any] = {},
) -> dict[str, Any]:
    """The whole document: every resource's operations and schemas, in the order given,
    plus an extension's ready-made paths. Two operations with one ``operationId`` are a
    ``ValueError``: a generated client would get one method for both."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = dict(ERROR_SCHEMAS)
    for resource in resources:
        for op in resource.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = dict(op.spec)
        schemas.update(resource.schemas(catalog))
    for path, item in extra_paths.items():
        paths.setdefault(path, {}).update(item)
    _check_operation_ids(paths)
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
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _check_operation_ids(paths: Mapping[str, Mapping[str, Any]]) -> None:
    seen: dict[str, str] = {}
    for path, item in paths.items():
        for method, spec in item.items():
            operation_id = spec.get("operationId") if isinstance(spec, Mapping) else None
            if operation_id is None:
                continue
            where = f"{method.upper()} {path}"
            if operation_id in seen:
                raise ValueError(
                    f"operationId {operation_id!r} of {where} is already {seen[operation_id]}'s"
                )
            seen[operation_id] = where


def _version() -> str:
    try:
        return metadata.version("tokenplans")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare tree
        return "0.0.0"
