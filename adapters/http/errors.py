"""Every failure the HTTP API answers, mapped to a status and a JSON body in one place.

The body is always ``{"error": "<short reason>"}`` plus the facts a client needs (the
remaining balance, the refusal's reason code, a request id). Endpoints simply let core
errors propagate; :data:`EXCEPTION_HANDLERS` turns them into responses, so the mapping
below is the whole contract (it is also what the README's error table lists).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import tokenplans

logger = logging.getLogger("adapters.http")

#: The header a 401 carries (RFC 6750); the same for every cause, so a client cannot
#: tell an expired token from a forged one.
WWW_AUTHENTICATE = {"WWW-Authenticate": "Bearer"}
UNAUTHORIZED = "unauthorized"


class BodyTooLargeError(Exception):
    """A request body grew past the app's ``max_body_bytes`` while it was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


def json_error(
    status_code: int, error: str, /, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The one shape of every error response."""
    return JSONResponse({"error": error, **extra}, status_code=status_code, headers=headers)


def _unauthorized(_request: Request, _exc: Exception) -> Response:
    return json_error(401, UNAUTHORIZED, headers=WWW_AUTHENTICATE)


def _forbidden(_request: Request, exc: tokenplans.PermissionDeniedError) -> Response:
    return json_error(403, "forbidden", reason=exc.reason, message=str(exc))


def _unknown_plan(_request: Request, exc: tokenplans.UnknownPlanError) -> Response:
    return json_error(400, "invalid plan", plan=exc.plan_id)


def _insufficient(_request: Request, exc: tokenplans.InsufficientTokensError) -> Response:
    return json_error(402, "insufficient tokens", remaining=exc.remaining, requested=exc.requested)


def _idempotency_conflict(_request: Request, exc: tokenplans.IdempotencyConflictError) -> Response:
    return json_error(
        409,
        "idempotency conflict",
        idempotency_key=exc.key,
        first_amount=exc.first_amount,
        message=str(exc),
    )


def _invalid_request(_request: Request, exc: Exception) -> Response:
    return json_error(422, "invalid request", message=str(exc))


def _storage_unavailable(_request: Request, _exc: Exception) -> Response:
    return json_error(503, "database unavailable", headers={"Retry-After": "1"})


def _account_busy(_request: Request, exc: Exception) -> Response:
    return json_error(503, "account busy", message=str(exc), headers={"Retry-After": "1"})


def _payment_refused(_request: Request, exc: tokenplans.PaymentError) -> Response:
    return json_error(400, "payment refused", reason=exc.reason, message=str(exc))


def _too_many_orders(_request: Request, exc: tokenplans.TooManyOrdersError) -> Response:
    return json_error(
        429,
        "too many open orders",
        reason=exc.reason,
        message=str(exc),
        headers={"Retry-After": str(exc.retry_after_seconds)},
    )


def _payment_not_found(_request: Request, exc: tokenplans.PaymentNotFoundError) -> Response:
    return json_error(404, "payment not found", order_id=exc.order_id)


def _gateway(request: Request, exc: Exception) -> Response:
    # The provider's own message may carry account details: log it, do not echo it.
    logger.warning(
        "payment gateway error on %s %s (request id %s): %s",
        request.method,
        request.url.path,
        request.scope.get("state", {}).get("request_id"),
        exc,
    )
    return json_error(502, "payment gateway unavailable")


def _too_large(_request: Request, exc: BodyTooLargeError) -> Response:
    return json_error(413, "request body too large", max_bytes=exc.limit)


_HTTP_REASONS = {404: "not found", 405: "method not allowed"}


def _http(_request: Request, exc: HTTPException) -> Response:
    """Starlette's own refusals (unknown route, wrong method), in our shape."""
    reason = _HTTP_REASONS.get(exc.status_code, str(exc.detail).lower())
    return json_error(exc.status_code, reason, headers=exc.headers)


Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


def _handles(handler: Callable[[Request, Any], Response]) -> Handler:
    # Each handler names the exception class it is registered for; Starlette's type for
    # the table is the general one, so widen it here rather than in every handler.
    return cast(Handler, handler)


#: Exception class -> handler. Starlette picks the most specific class in the MRO, so
#: ``AccountBusyError`` (a ``StorageUnavailableError``) and ``PaymentNotFoundError`` (a
#: ``PaymentError``) get their own answers.
EXCEPTION_HANDLERS: Mapping[Any, Handler] = {
    tokenplans.AuthenticationError: _handles(_unauthorized),
    tokenplans.PermissionDeniedError: _handles(_forbidden),
    tokenplans.UnknownPlanError: _handles(_unknown_plan),
    tokenplans.InsufficientTokensError: _handles(_insufficient),
    tokenplans.IdempotencyConflictError: _handles(_idempotency_conflict),
    tokenplans.InvalidRequestError: _handles(_invalid_request),
    tokenplans.StorageUnavailableError: _handles(_storage_unavailable),
    tokenplans.AccountBusyError: _handles(_account_busy),
    tokenplans.PaymentError: _handles(_payment_refused),
    tokenplans.PaymentNotFoundError: _handles(_payment_not_found),
    tokenplans.TooManyOrdersError: _handles(_too_many_orders),
    tokenplans.GatewayError: _handles(_gateway),
    BodyTooLargeError: _handles(_too_large),
    HTTPException: _handles(_http),
}
