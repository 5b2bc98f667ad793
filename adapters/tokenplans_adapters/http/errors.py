"""Every failure the HTTP API answers, mapped to a status and a JSON body in one place.

The body is always ``{"error": "<short reason>"}`` plus the facts a client needs (the
remaining balance, the refusal's reason code, a request id). Endpoints simply let core
errors propagate; :data:`EXCEPTION_HANDLERS` turns them into responses, so the mapping
below is the whole contract (it is also what the README's error table lists).
:func:`install_error_handlers` gives a host app the same answers for the core's errors
raised in its own routes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import tokenplans

from .refusals import (
    BodyTimeoutError,
    BodyTooLargeError,
    UnsupportedMediaTypeError,
    escaped,
)

logger = logging.getLogger("tokenplans_adapters.http")

#: The header a 401 carries (RFC 6750); the same for every cause, so a client cannot
#: tell an expired token from a forged one.
WWW_AUTHENTICATE = {"WWW-Authenticate": "Bearer"}
UNAUTHORIZED = "unauthorized"


class CauseLog:
    """Logs each cause of a 503 at most once per ``interval`` seconds.

    A database outage under load fails every request; one line per request would drown
    the log (and the disk) while saying nothing new. The first occurrence of a cause is
    logged at once; repeats within the interval are counted, and the count is reported
    with the next line for that cause. The last burst of an outage has no next line of
    its own: its count is reported on a line of its own by the next call of any cause
    once its interval is over, or by :meth:`flush` (readiness calls it when the database
    answers again), so no repeat goes unreported.
    """

    def __init__(
        self,
        log: logging.Logger,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}  # cause -> (logged at, suppressed)

    def log_once(
        self, level: int, cause: str, message: str, *args: object, exc_info: bool = False
    ) -> bool:
        """Log ``message % args`` unless ``cause`` was logged less than ``interval`` ago;
        says whether it logged."""
        now = self.clock()
        with self._lock:
            logged_at, suppressed = self._last.get(cause, (None, 0))
            if logged_at is not None and now - logged_at < self.interval:
                self._last[cause] = (logged_at, suppressed + 1)
                repeat = True
            else:
                self._last[cause] = (now, 0)
                repeat = False
        # The other causes' bursts that are over: their counts, on lines of their own.
        self.flush(level, older_than=self.interval, now=now, keep=cause)
        if repeat:
            return False
        if suppressed:
            message += " (%d more like it in the last %.0f s)"
            args = (*args, suppressed, now - logged_at if logged_at is not None else 0.0)
        self.log.log(level, message, *args, exc_info=exc_info)
        return True

    def flush(
        self,
        level: int = logging.WARNING,
        *,
        older_than: float = 0.0,
        now: float | None = None,
        keep: str | None = None,
    ) -> None:
        """Report the repeats counted but not yet reported of each cause last logged at
        least ``older_than`` seconds ago (but ``keep``, whose own line reports them), one
        line per cause, and forget those causes."""
        now = self.clock() if now is None else now
        with self._lock:
            due = {
                cause: (logged_at, suppressed)
                for cause, (logged_at, suppressed) in self._last.items()
                if cause != keep and now - logged_at >= older_than
            }
            for cause in due:
                del self._last[cause]
        for cause, (logged_at, suppressed) in due.items():
            if suppressed:
                self.log.log(
                    level,
                    "503 cause %s: %d more like it in the %.0f s after its last line",
                    escaped(cause),
                    suppressed,
                    now - logged_at,
                )


#: For an app that brought no log of its own (``create_app`` gives each app one).
_DEFAULT_UNAVAILABLE_LOG = CauseLog(logger)


def unavailable_log(request: Request) -> CauseLog:
    """The app's log of 503 causes (``app.state.unavailable_log``)."""
    log = getattr(request.app.state, "unavailable_log", None)
    return log if isinstance(log, CauseLog) else _DEFAULT_UNAVAILABLE_LOG


def _path_of(request: Request) -> str:
    """The request's path for a log line, as the server decoded it and escaped. Not
    ``request.url.path``: rebuilding the URL silently drops tabs and newlines, so a line
    would show a path that was never requested."""
    return escaped(str(request.scope.get("path", "")))


def log_unavailable(request: Request, cause: str, detail: str, *, exc_info: bool = False) -> None:
    """Log why ``request`` gets a 503, rate-limited per ``cause``: at WARNING, or at ERROR
    with the traceback for an unexpected failure (``exc_info``)."""
    unavailable_log(request).log_once(
        logging.ERROR if exc_info else logging.WARNING,
        cause,
        "503 on %s %s (request id %s): %s",
        escaped(request.method),
        _path_of(request),
        request.scope.get("state", {}).get("request_id"),
        escaped(detail),
        exc_info=exc_info,
    )


def log_unavailable_error(request: Request, exc: BaseException) -> None:
    """:func:`log_unavailable` for an exception: its class is the cause."""
    name = type(exc).__name__
    log_unavailable(request, name, f"{name}: {exc}")


def json_error(
    status_code: int, error: str, /, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The one shape of every error response. Every text in it is :func:`escaped`: a
    field may repeat what the client sent (a plan id, a hold id, an unknown field's
    name), and a lone surrogate there would make the answer itself fail to encode."""
    body = {
        name: escaped(value) if isinstance(value, str) else value
        for name, value in {"error": error, **extra}.items()
    }
    return JSONResponse(body, status_code=status_code, headers=headers)


def _unauthorized(_request: Request, _exc: Exception) -> Response:
    return json_error(401, UNAUTHORIZED, headers=WWW_AUTHENTICATE)


def _forbidden(_request: Request, exc: tokenplans.PermissionDeniedError) -> Response:
    return json_error(403, "forbidden", reason=exc.reason, message=str(exc))


def _feature_not_in_plan(_request: Request, exc: tokenplans.FeatureNotInPlanError) -> Response:
    return json_error(403, "feature not in plan", feature=exc.feature, plan=exc.plan)


def _unknown_plan(_request: Request, exc: tokenplans.UnknownPlanError) -> Response:
    return json_error(400, "invalid plan", plan=exc.plan_id)


def _unknown_pack(_request: Request, exc: tokenplans.UnknownPackError) -> Response:
    return json_error(400, "invalid pack", pack=exc.pack_id)


def _unknown_model(_request: Request, exc: tokenplans.UnknownModelError) -> Response:
    return json_error(400, "unknown model", model=exc.model)


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


def _hold(facts: object) -> tokenplans.Hold:
    """The hold an error carries: the core raises hold errors with the :class:`Hold`
    itself (``tokenplans.errors`` types it by the facts it reads, to stay a leaf)."""
    assert isinstance(facts, tokenplans.Hold)  # noqa: S101 - the core's own guarantee
    return facts


def _hold_not_found(_request: Request, exc: tokenplans.HoldNotFoundError) -> Response:
    return json_error(404, "hold not found", hold_id=exc.hold_id)


def _hold_conflict(_request: Request, exc: tokenplans.HoldConflictError) -> Response:
    from .snapshot import HOLD, HOLD_CONFLICT_FIELDS  # noqa: PLC0415 - it imports this module

    # The hold as it is (its final state, when closed), so a client sees what won.
    shown = HOLD.json(_hold(exc.hold), HOLD_CONFLICT_FIELDS)
    return json_error(409, "hold conflict", **shown, message=str(exc))


def _in_progress(_request: Request, exc: tokenplans.RequestInProgressError) -> Response:
    from .snapshot import HOLD, HOLD_IN_PROGRESS_FIELDS  # noqa: PLC0415 - as above

    hold = exc.hold
    assert hold is not None  # noqa: S101 - an in-progress request always has its hold
    return json_error(
        409,
        "request in progress",
        **HOLD.json(_hold(hold), HOLD_IN_PROGRESS_FIELDS),
        message=str(exc),
        headers={"Retry-After": str(exc.retry_after_seconds)},
    )


def _already_processed(_request: Request, exc: tokenplans.AlreadyProcessedError) -> Response:
    from .snapshot import HOLD, HOLD_DONE_FIELDS  # noqa: PLC0415 - as above

    # What the first request left, so a client can tell it finished and how.
    if exc.hold is not None:
        shown = HOLD.json(_hold(exc.hold), HOLD_DONE_FIELDS)
        return json_error(409, "already processed", **shown, message=str(exc))
    receipt = exc.receipt
    assert receipt is not None  # noqa: S101 - one of the two is always given
    return json_error(
        409,
        "already processed",
        idempotency_key=receipt.idempotency_key,
        status="debited",
        amount=receipt.amount,
        message=str(exc),
    )


def _too_many_holds(_request: Request, exc: tokenplans.TooManyHoldsError) -> Response:
    return json_error(409, "too many open holds", limit=exc.limit, message=str(exc))


def _lot_not_found(_request: Request, exc: tokenplans.LotNotFoundError) -> Response:
    return json_error(404, "lot not found", lot_id=exc.lot_id)


def _lot_conflict(_request: Request, exc: tokenplans.LotConflictError) -> Response:
    return json_error(409, "lot conflict", lot_id=exc.lot_id, message=str(exc))


def _too_many_lots(_request: Request, exc: tokenplans.TooManyLotsError) -> Response:
    return json_error(409, "too many lots", limit=exc.limit, message=str(exc))


def _invalid_request(_request: Request, exc: Exception) -> Response:
    return json_error(422, "invalid request", message=str(exc))


def _storage_unavailable(request: Request, exc: Exception) -> Response:
    # The driver's message may name hosts and users: log it, do not echo it.
    log_unavailable_error(request, exc)
    return json_error(503, "database unavailable", headers={"Retry-After": "1"})


def _account_busy(request: Request, exc: Exception) -> Response:
    log_unavailable_error(request, exc)
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
        escaped(request.method),
        _path_of(request),
        request.scope.get("state", {}).get("request_id"),
        escaped(str(exc)),
    )
    return json_error(502, "payment gateway unavailable")


def _too_large(_request: Request, exc: BodyTooLargeError) -> Response:
    return json_error(413, "request body too large", max_bytes=exc.limit)


def _too_slow(_request: Request, exc: BodyTimeoutError) -> Response:
    # The rest of the body may still be on its way: the connection cannot be reused.
    return json_error(408, "request timeout", message=str(exc), headers={"Connection": "close"})


def _unsupported_media_type(_request: Request, exc: UnsupportedMediaTypeError) -> Response:
    return json_error(415, "unsupported media type", message=str(exc))


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
    tokenplans.FeatureNotInPlanError: _handles(_feature_not_in_plan),
    tokenplans.UnknownPlanError: _handles(_unknown_plan),
    tokenplans.UnknownPackError: _handles(_unknown_pack),
    tokenplans.UnknownModelError: _handles(_unknown_model),
    tokenplans.InsufficientTokensError: _handles(_insufficient),
    tokenplans.IdempotencyConflictError: _handles(_idempotency_conflict),
    tokenplans.HoldNotFoundError: _handles(_hold_not_found),
    tokenplans.HoldConflictError: _handles(_hold_conflict),
    tokenplans.TooManyHoldsError: _handles(_too_many_holds),
    tokenplans.LotNotFoundError: _handles(_lot_not_found),
    tokenplans.LotConflictError: _handles(_lot_conflict),
    tokenplans.TooManyLotsError: _handles(_too_many_lots),
    tokenplans.RequestInProgressError: _handles(_in_progress),
    tokenplans.AlreadyProcessedError: _handles(_already_processed),
    tokenplans.InvalidRequestError: _handles(_invalid_request),
    tokenplans.StorageUnavailableError: _handles(_storage_unavailable),
    tokenplans.AccountBusyError: _handles(_account_busy),
    tokenplans.PaymentError: _handles(_payment_refused),
    tokenplans.PaymentNotFoundError: _handles(_payment_not_found),
    tokenplans.TooManyOrdersError: _handles(_too_many_orders),
    tokenplans.GatewayError: _handles(_gateway),
    BodyTooLargeError: _handles(_too_large),
    BodyTimeoutError: _handles(_too_slow),
    UnsupportedMediaTypeError: _handles(_unsupported_media_type),
    HTTPException: _handles(_http),
}


#: The handlers of the core's own errors (every :class:`tokenplans.TokenplansError`):
#: what a host app installs. Not the body, route and method refusals, which are the
#: host's own business (a FastAPI host keeps its ``{"detail": ...}`` 404s and 422s).
CORE_ERROR_HANDLERS: Mapping[Any, Handler] = {
    error: handler
    for error, handler in EXCEPTION_HANDLERS.items()
    if issubclass(error, tokenplans.TokenplansError)
}


def install_error_handlers(app: Starlette) -> None:
    """Answer the core's errors raised in ``app``'s own routes (a host Starlette or
    FastAPI app) with exactly the JSON of tokenplans' routes: an
    :class:`~tokenplans.InsufficientTokensError` is the 402 with ``remaining`` and
    ``requested``, a :class:`~tokenplans.StorageUnavailableError` the 503 with
    ``Retry-After``, and so on (the README's error table). Call it before the app
    starts; handlers the app already has for other exceptions stay."""
    for error, handler in CORE_ERROR_HANDLERS.items():
        app.add_exception_handler(error, handler)
    if not isinstance(getattr(app.state, "unavailable_log", None), CauseLog):
        app.state.unavailable_log = CauseLog(logger)
