"""Small pure-ASGI middlewares: request ids with a last-resort JSON 500, body limits (size
and read time), a per-subject bound on concurrent requests, and Starlette's CORS with
JSON preflight answers.

Pure ASGI (not ``BaseHTTPMiddleware``) so they add no task or buffering per request and
keep working when the app is mounted inside a host application.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from http import HTTPStatus

import anyio
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenplans import Principal

from .errors import json_error
from .refusals import BodyTimeoutError, BodyTooLargeError, escaped

logger = logging.getLogger("tokenplans_adapters.http")
#: One line per request answered with a 5xx or slowly (:class:`RequestIdMiddleware`).
request_logger = logging.getLogger("tokenplans_adapters.http.requests")

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class _RequestIds:
    """32 hex digits per request: this process's random 64-bit prefix and a counter. Unique
    like a ``uuid4`` for telling requests apart in logs, at a fraction of its cost (one
    random draw per process, not one per request); a forked child draws its own prefix."""

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._draw_prefix()
        os.register_at_fork(after_in_child=self._draw_prefix)

    def _draw_prefix(self) -> None:
        self._prefix = os.urandom(8).hex()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


_request_ids = _RequestIds()


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The value of the request header ``name`` (lower case), read from the raw list: no
    :class:`~starlette.datastructures.Headers` built for one look-up."""
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def _set_header(message: Message, name: bytes, value: bytes) -> None:
    """Set the response header ``name`` (lower case) on a ``http.response.start``."""
    headers = [(key, old) for key, old in message.get("headers", ()) if key.lower() != name]
    headers.append((name, value))
    message["headers"] = headers


_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode()


class RequestIdMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` if it looks sane), echoes
    it on the response, and turns any exception that escapes the app into a JSON 500
    carrying that id, logged with its traceback; the traceback never reaches the client.

    It also logs, one line each, the requests that took ``slow_seconds`` or more
    (``None``: none) from here to their last byte, with their status: with the error
    lines (a 500's traceback here, a 503's cause in :mod:`.errors`), what an access log
    is read for, without a line per request (uvicorn's access log is off by default:
    docs/operations.md, "Request logs")."""

    def __init__(self, app: ASGIApp, slow_seconds: float | None = None) -> None:
        self.app = app
        self.slow_seconds = slow_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.monotonic()
        offered = (_header(scope, _REQUEST_ID_KEY) or b"").decode("latin-1")
        request_id = offered if _SAFE_REQUEST_ID.fullmatch(offered) else _request_ids.next()
        scope.setdefault("state", {})["request_id"] = request_id
        encoded = request_id.encode()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _set_header(message, _REQUEST_ID_KEY, encoded)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "unhandled error in %s %s (request id %s)",
                escaped(str(scope.get("method"))),
                escaped(str(scope.get("path"))),
                request_id,
            )
            if status:  # too late for a clean answer: let the server drop the connection
                raise
            response = json_error(
                500,
                "internal error",
                request_id=request_id,
                headers={REQUEST_ID_HEADER: request_id},
            )
            await response(scope, receive, send)
            return
        took = time.monotonic() - started_at
        if self.slow_seconds is not None and took >= self.slow_seconds:
            request_logger.warning(
                "%s %s answered %s in %.0f ms (request id %s)",
                escaped(str(scope.get("method"))),
                escaped(str(scope.get("path"))),
                status,
                took * 1000,
                request_id,
            )


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes``: at once when ``Content-Length`` says so,
    and while streaming otherwise (chunked uploads or a lying header), by raising
    :class:`BodyTooLargeError` from ``receive`` so the app's handler answers 413.

    A body that has not arrived in full ``timeout_seconds`` after the request started
    raises :class:`BodyTimeoutError` (408) the same way, so a client trickling or
    stalling its body cannot hold a connection and a handler for ever. The deadline
    covers the whole body, not each chunk: one byte every few seconds does not reset it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Read from the raw headers: no Headers built per request. A request that states
        # no length may still send a body (chunked, or HTTP/2), so every one is wrapped;
        # the wrapper costs nothing until a handler reads.
        declared = (_header(scope, b"content-length") or b"").decode("latin-1")
        if declared.isdecimal() and int(declared) > self.max_bytes:
            response = json_error(413, "request body too large", max_bytes=self.max_bytes)
            await response(scope, receive, send)
            return
        # Measured from here on the monotonic clock, so that a request that never reads its
        # body (every GET) asks the event loop for nothing.
        started = time.monotonic()
        received = 0
        complete = False

        async def receive_limited() -> Message:
            nonlocal received, complete
            if complete:  # after the body, only a disconnect can come: no deadline
                return await receive()
            left = self.timeout_seconds - (time.monotonic() - started)
            with anyio.move_on_after(left):
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_bytes:
                        raise BodyTooLargeError(self.max_bytes)
                complete = message["type"] != "http.request" or not message.get("more_body")
                return message
            raise BodyTimeoutError(self.timeout_seconds)

        await self.app(scope, receive_limited, send)


class SubjectConcurrencyMiddleware:
    """At most ``limit`` requests of one authenticated subject in progress at once in
    this process; one more is answered 429 ``too many concurrent requests`` with
    ``Retry-After: 1`` before it reads its body or touches the store.

    It runs after authentication (the subject is the principal's), so anonymous requests
    (health, plans, documents) and refused credentials are not counted; nor are admins,
    whose back ends act for many users at once. The count is this process's: with
    several workers, a subject may have up to ``limit`` in progress in each. A request
    counts until the app has answered it in full (a streamed answer, to its last chunk).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.app = app
        self.limit = limit
        # subject -> requests in progress; only the event loop's thread touches it.
        self._in_progress: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subject = _counted_subject(scope)
        if subject is None:
            await self.app(scope, receive, send)
            return
        in_progress = self._in_progress.get(subject, 0)
        if in_progress >= self.limit:
            response = json_error(
                429,
                "too many concurrent requests",
                limit=self.limit,
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        self._in_progress[subject] = in_progress + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self._in_progress[subject] - 1
            if left:
                self._in_progress[subject] = left
            else:
                del self._in_progress[subject]  # no entry per subject ever seen


def _counted_subject(scope: Scope) -> str | None:
    """The subject an HTTP request counts against: its principal's, unless it has none
    or is an admin's."""
    if scope["type"] != "http":
        return None
    principal = getattr(scope.get("user"), "principal", None)
    if not isinstance(principal, Principal) or principal.is_admin:
        return None
    return principal.subject


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, with its preflight answers (``OK`` and ``Disallowed
    CORS origin``, as text) in the API's JSON shape, so every response is JSON.

    A request without an ``Origin`` (any client but a browser's cross-origin one) skips
    Starlette's handling, which would only add ``Vary: Origin``: that is added here."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _header(scope, b"origin") is not None:
            await super().__call__(scope, receive, send)
            return

        async def send_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_vary_origin(message)
            await send(message)

        await self.app(scope, receive, send_vary)

    def preflight_response(self, request_headers: Headers) -> Response:
        plain = super().preflight_response(request_headers)
        headers = {
            name: value
            for name, value in plain.headers.items()
            if name not in ("content-type", "content-length")
        }
        if plain.status_code < HTTPStatus.BAD_REQUEST:
            return JSONResponse({"status": "ok"}, headers=headers)
        reason = bytes(plain.body).decode()
        return json_error(
            plain.status_code, "cors preflight refused", message=reason, headers=headers
        )


def _add_vary_origin(message: Message) -> None:
    """``Vary: Origin`` on a response start, after any ``Vary`` it has (as Starlette's CORS
    middleware writes it for a request without an ``Origin``)."""
    headers = list(message.get("headers", ()))
    vary = [value for key, value in headers if key.lower() == b"vary"]
    if vary:
        headers = [(key, value) for key, value in headers if key.lower() != b"vary"]
    headers.append((b"vary", b", ".join([*vary, b"Origin"])))
    message["headers"] = headers
