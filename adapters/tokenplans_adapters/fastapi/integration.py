"""tokenplans inside a FastAPI app: mounted, documented, and usable from the host's routes.

:func:`mount_tokenplans` mounts the app of ``tokenplans_adapters.http.create_app`` under a prefix,
merges its OpenAPI document into the host's (so the host's ``/docs`` shows every billing
route, with the bearer scheme) and installs the error handlers. It returns
:class:`TokenplansDependencies`, whose dependencies authenticate a host route's caller
with the same identity provider and charge tokens around a host endpoint, answering
every refusal with the same JSON as tokenplans' own routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from tokenplans import (
    DEFAULT_HOLD_TTL_SECONDS,
    MAX_AMOUNT,
    AuthenticationError,
    DebitReceipt,
    IdentityProvider,
    Principal,
    TokenService,
)
from tokenplans.aio import AsyncReservation, AsyncTokenService
from tokenplans_adapters.http import (
    BearerBackend,
    PrincipalUser,
    identity_of,
    install_error_handlers,
)
from tokenplans_adapters.http.auth import check_admin

from .openapi import component_name, merge_document

DEFAULT_COMPONENT_PREFIX = "Tokenplans"

#: A dependency FastAPI resolves: a function whose parameters are themselves resolved.
Dependency = Callable[..., Any]


class TokenplansDependencies:
    """Dependencies for a host's own routes, over tokenplans' service and identity.

    - ``Depends(tp.current_principal)``: the caller's :class:`~tokenplans.Principal`, or
      the same 401 as tokenplans' routes (``{"error": "unauthorized"}`` with
      ``WWW-Authenticate: Bearer``) for a missing, malformed, expired or rejected token;
    - ``Depends(tp.admin_principal)``: an admin's principal, or the 403 ``admin_only``;
    - ``Depends(tp.charge(amount))``: debits the caller before the endpoint runs (402 if
      too few tokens remain) and gives it the :class:`~tokenplans.DebitReceipt`;
    - ``Depends(tp.hold(amount))``: holds tokens for the endpoint and gives it the
      :class:`~tokenplans.aio.AsyncReservation` to settle with what it really used; an
      endpoint that raises, or returns without settling, has the hold released.

    ``service`` is the :class:`~tokenplans.aio.AsyncTokenService` they use, there for the
    host's own calls. The refusals are core errors: the host answers them as tokenplans
    does once :func:`~tokenplans_adapters.http.install_error_handlers` ran (:func:`mount_tokenplans`
    runs it). Authentication is declared with FastAPI's ``HTTPBearer`` (never refusing by
    itself), so the host's docs show a lock on these routes, and one "Authorize" serves
    them and the mounted ones.
    """

    def __init__(
        self,
        service: TokenService,
        identity: IdentityProvider,
        *,
        component_prefix: str = DEFAULT_COMPONENT_PREFIX,
    ) -> None:
        # Starlette's thread pool: the host's own sync endpoints share its limiter.
        self.service = AsyncTokenService(service, runner=run_in_threadpool)
        self.current_principal = _principal_dependency(
            BearerBackend(identity),
            HTTPBearer(auto_error=False, scheme_name=component_name(component_prefix, "bearer")),
        )

        async def admin_principal(
            principal: Principal = Depends(self.current_principal),  # noqa: B008 - FastAPI's way
        ) -> Principal:
            return check_admin(principal)

        self.admin_principal = admin_principal

    def charge(
        self,
        amount: int | Dependency,
        *,
        idempotency_key: Dependency | None = None,
    ) -> Callable[..., Awaitable[DebitReceipt]]:
        """A dependency that debits ``amount`` tokens from the caller before the endpoint
        runs and returns the receipt; a short balance is the 402 and the endpoint does
        not run. ``amount`` is a number, or a dependency computing it from the request
        (it may take the body, a query parameter, other dependencies). With
        ``idempotency_key`` (a dependency returning the key or ``None``, e.g. reading a
        header) a retried request debits once. A debit is final: an endpoint that fails
        afterwards does not give the tokens back."""
        if isinstance(amount, int) and not 1 <= amount <= MAX_AMOUNT:
            raise ValueError(f"amount must be 1 to {MAX_AMOUNT}, got {amount}")
        cost = _constant(amount) if isinstance(amount, int) else amount
        key_of = _constant(None) if idempotency_key is None else idempotency_key
        service = self.service

        async def charged(
            principal: Principal = Depends(self.current_principal),  # noqa: B008
            tokens: int = Depends(cost),
            key: str | None = Depends(key_of),
        ) -> DebitReceipt:
            return await service.consume(principal, tokens, idempotency_key=key)

        return charged

    def hold(
        self,
        amount: int | Dependency,
        *,
        ttl_seconds: int = DEFAULT_HOLD_TTL_SECONDS,
    ) -> Callable[..., AsyncIterator[AsyncReservation]]:
        """A dependency that reserves ``amount`` tokens before the endpoint runs (402 if
        too few remain: the endpoint does not run) and gives it the reservation, which
        the endpoint settles with what was actually used (``await reservation.settle(n)``,
        even above the hold: see the README's "Metering a model call"). If the endpoint
        raises, or returns without settling, the hold is released, so an aborted model
        call frees its tokens at once; a process that dies meanwhile leaves a hold that
        expires after ``ttl_seconds``. ``amount`` is a number or a dependency computing
        it from the request, as for :meth:`charge`."""
        if isinstance(amount, int) and not 1 <= amount <= MAX_AMOUNT:
            raise ValueError(f"amount must be 1 to {MAX_AMOUNT}, got {amount}")
        cost = _constant(amount) if isinstance(amount, int) else amount
        service = self.service

        async def held(
            principal: Principal = Depends(self.current_principal),  # noqa: B008
            tokens: int = Depends(cost),
        ) -> AsyncIterator[AsyncReservation]:
            async with service.holding(principal, tokens, ttl_seconds=ttl_seconds) as reservation:
                yield reservation

        return held


def _principal_dependency(
    backend: BearerBackend, bearer: HTTPBearer
) -> Callable[..., Awaitable[Principal]]:
    async def current_principal(
        request: Request,
        _documented: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    ) -> Principal:
        # The header is read by the same backend as tokenplans' own routes, so the two
        # can never disagree on what a valid credential is.
        authenticated = await backend.authenticate(request)
        if authenticated is not None and isinstance(authenticated[1], PrincipalUser):
            return authenticated[1].principal
        raise AuthenticationError("missing or invalid bearer credential")

    return current_principal


def _constant(value: Any) -> Dependency:
    async def constant() -> Any:
        return value

    return constant


def mount_tokenplans(
    host: FastAPI,
    billing: Starlette,
    *,
    prefix: str = "/billing",
    component_prefix: str = DEFAULT_COMPONENT_PREFIX,
) -> TokenplansDependencies:
    """Mount ``billing`` (made by ``tokenplans_adapters.http.create_app``) at ``prefix`` in
    ``host``, merge its OpenAPI document into the host's, install the error handlers,
    and return the dependencies for the host's own routes.

    The merge happens lazily, when the host first builds its document (FastAPI's
    ``app.openapi()``), so routes the host adds later are in it too; the host's own
    paths and components stay as they are. Ours are under ``prefix`` and named with
    ``component_prefix`` (``TokenplansUsage``, ``TokenplansBearer``): see
    :mod:`tokenplans_adapters.fastapi.openapi`.
    """
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"prefix must start with '/' and not end with one, got {prefix!r}")
    state = getattr(billing.state, "tokenplans", None)
    if state is None:
        raise TypeError("not a tokenplans app: make it with tokenplans_adapters.http.create_app")
    dependencies = TokenplansDependencies(
        state.service, identity_of(billing), component_prefix=component_prefix
    )
    host.mount(prefix, billing)
    install_error_handlers(host)
    _merge_on_build(host, state.openapi, prefix=prefix, component_prefix=component_prefix)
    return dependencies


def _merge_on_build(
    host: FastAPI, ours: dict[str, Any], *, prefix: str, component_prefix: str
) -> None:
    """Wrap ``host.openapi`` so each document it builds gets ours merged, once (FastAPI
    caches the document; a host that clears ``openapi_schema`` gets a fresh merge)."""
    build = host.openapi
    merged: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = build()
        if not merged or merged[0] is not document:
            merge_document(document, ours, prefix=prefix, component_prefix=component_prefix)
            merged[:] = [document]
        return document

    host.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
