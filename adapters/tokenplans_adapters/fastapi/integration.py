"""tokenplans inside a FastAPI app: mounted, documented, and usable from the host's routes.

:func:`mount_tokenplans` mounts the app of ``tokenplans_adapters.http.create_app`` under a prefix,
merges its OpenAPI document into the host's (so the host's ``/docs`` shows every billing
route, with the bearer scheme) and installs the error handlers. It returns
:class:`TokenplansDependencies`, whose dependencies authenticate a host route's caller
with the same identity provider and charge tokens around a host endpoint, answering
every refusal with the same JSON as tokenplans' own routes. It also serves the host's
``/docs`` from the Swagger UI files tokenplans ships, so that page works offline too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Unpack

from fastapi import Depends, FastAPI, Request, Security
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.applications import Starlette
from starlette.routing import Route

from tokenplans import (
    MAX_AMOUNT,
    AlreadyProcessedError,
    AuthenticationError,
    DebitReceipt,
    Estimate,
    FeatureNotInPlanError,
    IdentityProvider,
    ModelUsage,
    Principal,
    Reserve,
    ReserveOptions,
    TokenService,
)
from tokenplans.aio import AsyncReservation, AsyncTokenService, OnReplay, check_on_replay
from tokenplans.limits import check_feature
from tokenplans_adapters.http import (
    BearerBackend,
    PrincipalUser,
    identity_of,
    install_error_handlers,
)
from tokenplans_adapters.http.auth import check_admin
from tokenplans_adapters.http.offload import in_thread
from tokenplans_adapters.http.resources.documents import ASSETS_PATH, swagger_ui_dir

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
    - ``Depends(tp.charge(amount))`` (or ``charge(usage=...)``): debits the caller before
      the endpoint runs (402 if too few tokens remain) and gives it the
      :class:`~tokenplans.DebitReceipt`;
    - ``Depends(tp.hold(amount))`` (or ``hold(estimate=...)``): holds tokens for the
      endpoint and gives it the :class:`~tokenplans.aio.AsyncReservation` to settle with
      what it really used (``settle(n)`` or ``settle(usage=...)``); an endpoint that
      raises, or returns without settling, has the hold released;
    - ``Depends(tp.require_feature(name))``: the caller's principal when its plan lists
      the feature ``name``, else the 403 ``{"error": "feature not in plan", "feature":
      ..., "plan": ...}`` and the endpoint does not run.

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
        # The mounted API's own executor: all of tokenplans' storage calls in this process
        # share its 40 threads (and the SQLite pool sized to them), and it costs about
        # half of Starlette's run_in_threadpool per call.
        self.service = AsyncTokenService(service, runner=in_thread)
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
        amount: int | Dependency | None = None,
        *,
        usage: ModelUsage | Dependency | None = None,
        idempotency_key: Dependency | None = None,
        on_replay: OnReplay = "refuse",
    ) -> Callable[..., Awaitable[DebitReceipt]]:
        """A dependency that debits the caller before the endpoint runs and returns the
        receipt; a short balance is the 402 and the endpoint does not run. It debits
        ``amount`` tokens, or what ``usage`` (a :class:`~tokenplans.ModelUsage`) costs at
        the service's prices, for a call whose usage is known from the request alone (an
        embedding: its input, no output); exactly one of the two. Either is a value, or a
        dependency computing it from the request (it may take the body, a query
        parameter, other dependencies). A model the prices do not know is the 400
        ``unknown model``, nothing debited. With ``idempotency_key`` (a dependency
        returning the key or ``None``, e.g. reading a header) a retried request debits
        once, and is answered before the endpoint runs: the 409 ``already processed``
        (with the first debit's ``amount``), so the endpoint (and its model call) never
        runs twice. A host that keeps its own record of responses passes
        ``on_replay="call"``: the endpoint then runs with ``receipt.replayed`` true and
        must answer from that record. A debit is final: an endpoint that fails afterwards
        does not give the tokens back. A call whose usage is only known once it ran is
        :meth:`hold`'s."""
        cost, priced = _one_cost(amount, usage, "usage", ModelUsage)
        key_of = _constant(None) if idempotency_key is None else idempotency_key
        policy = check_on_replay(on_replay)  # when the route is declared, not on a request
        service = self.service

        async def charged(
            principal: Principal = Depends(self.current_principal),  # noqa: B008
            value: Any = Depends(cost),  # noqa: B008
            key: str | None = Depends(key_of),
        ) -> DebitReceipt:
            if priced:
                receipt = await service.consume(principal, usage=value, idempotency_key=key)
            else:
                receipt = await service.consume(principal, value, idempotency_key=key)
            if receipt.replayed and policy == "refuse":
                raise AlreadyProcessedError(receipt=receipt)
            return receipt

        return charged

    def require_feature(self, name: str) -> Callable[..., Awaitable[Principal]]:
        """A dependency that lets the endpoint run only for a caller whose plan lists the
        feature ``name`` (``features`` in the plan catalog), and gives it the caller's
        principal; any other caller gets the 403 ``feature not in plan`` (with the
        ``feature`` and the caller's ``plan``). It reads the account (an unknown caller
        reads as the default plan) and writes nothing. ``name`` is checked when the
        route is declared."""
        feature = check_feature(name)
        service = self.service

        async def featured(
            principal: Principal = Depends(self.current_principal),  # noqa: B008
        ) -> Principal:
            result = await service.check(principal, feature=feature)
            if not result.allowed:
                raise FeatureNotInPlanError(feature, result.plan)
            return principal

        return featured

    def hold(
        self,
        amount: int | Dependency | None = None,
        *,
        estimate: Estimate | Dependency | None = None,
        hold_id: Dependency | None = None,
        on_replay: OnReplay = "refuse",
        **options: Unpack[ReserveOptions],
    ) -> Callable[..., AsyncIterator[AsyncReservation]]:
        """A dependency that holds tokens before the endpoint runs (402 if too few
        remain: the endpoint does not run) and gives it the reservation, which the
        endpoint settles with what was actually used: ``await reservation.settle(n)``,
        or ``settle(usage=...)`` with the call's :class:`~tokenplans.ModelUsage` (a
        provider's usage dict goes through ``ModelUsage.from_openai`` or
        ``from_anthropic``), even above the hold: see the README's "Metering a model
        call". It holds ``amount`` tokens, or what ``estimate`` (an
        :class:`~tokenplans.Estimate`: model, prompt, ``max_tokens``) can cost at most;
        exactly one of the two, each a value or a dependency computing it from the
        request, as for :meth:`charge`. A model the prices do not know is the 400
        ``unknown model``, nothing held.

        With ``hold_id`` (a dependency returning the id or ``None``, e.g. reading an
        ``Idempotency-Key`` header) a duplicate request is answered before the endpoint
        runs, so the model is never called twice: the 409 ``request in progress`` (with
        ``Retry-After``) while the first one's hold is open, the 409 ``already
        processed`` once it is closed. A host that keeps its own record of responses
        passes ``on_replay="call"``: the endpoint then runs with ``reservation.replayed``
        true and must answer from that record. Ids are scoped to the caller, so another
        caller's id never names this request's hold.

        A streaming endpoint reports as it goes (``reservation.report(n)`` or
        ``report(usage=...)``, cumulative). Leaving the dependency closes only a hold this
        request placed: settled with the last report if there was no settle (a client
        that hangs up mid-stream still pays for what it received), else released, so an
        aborted model call frees its tokens at once; a process that dies meanwhile
        leaves a hold that expires after ``ttl_seconds``. The reserve's other options
        (``ttl_seconds``: :class:`~tokenplans.ReserveOptions`) are forwarded as given."""
        cost, priced = _one_cost(amount, estimate, "estimate", Estimate)
        id_of = _constant(None) if hold_id is None else hold_id
        policy = check_on_replay(on_replay)  # when the route is declared, not on a request
        service = self.service

        async def held(
            principal: Principal = Depends(self.current_principal),  # noqa: B008
            value: Any = Depends(cost),  # noqa: B008
            held_id: str | None = Depends(id_of),
        ) -> AsyncIterator[AsyncReservation]:
            amount, estimate = (None, value) if priced else (value, None)
            command = Reserve(amount, estimate, held_id, **options)
            async with service.holding(principal, command, on_replay=policy) as reservation:
                yield reservation

        return held


def _one_cost(
    amount: int | Dependency | None, call: Any, name: str, kind: type
) -> tuple[Dependency, bool]:
    """The dependency giving a charge's or hold's cost, and whether it gives ``call``
    (priced by the service) rather than ``amount``: exactly one may be given, and a
    constant amount is checked at once, when the route is declared."""
    if (amount is None) == (call is None):
        raise ValueError(f"give exactly one of amount and {name}")
    if amount is None:
        return (_constant(call) if isinstance(call, kind) else call), True
    if isinstance(amount, int):
        if not 1 <= amount <= MAX_AMOUNT:
            raise ValueError(f"amount must be 1 to {MAX_AMOUNT}, got {amount}")
        return _constant(amount), False
    return amount, False


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
    serve_host_docs: bool = True,
) -> TokenplansDependencies:
    """Mount ``billing`` (made by ``tokenplans_adapters.http.create_app``) at ``prefix`` in
    ``host``, merge its OpenAPI document into the host's, install the error handlers,
    and return the dependencies for the host's own routes.

    The merge happens lazily, when the host first builds its document (FastAPI's
    ``app.openapi()``), so routes the host adds later are in it too; the host's own
    paths and components stay as they are. Ours are under ``prefix`` and named with
    ``component_prefix`` (``TokenplansUsage``, ``TokenplansBearer``, operation
    ``tokenplansGetUsage``): see :mod:`tokenplans_adapters.fastapi.openapi`.

    ``serve_host_docs`` (default on): FastAPI's own ``/docs`` page loads Swagger UI from
    a CDN, so it is blank offline, behind a firewall or under a strict CSP. With it, the
    host's ``docs_url`` route is replaced by the same page (FastAPI's
    ``get_swagger_ui_html``, with the host's title, OAuth and Swagger UI parameters)
    loading Swagger UI's script, style and icon from ``<prefix>/docs/assets``, the files
    tokenplans already serves for its own ``/docs`` (the ``swagger-ui-py`` package);
    the validator badge is off, so the page fetches nothing from elsewhere. Only that
    route changes: a host made with ``docs_url=None`` (no docs, or docs of its own) is
    left alone, and so is its ``/redoc``, which still loads ReDoc from a CDN (make the
    host with ``redoc_url=None`` to drop it). Pass ``False`` to keep FastAPI's CDN page.
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
    if serve_host_docs:
        _serve_docs_locally(host, prefix)
    return dependencies


def _serve_docs_locally(host: FastAPI, prefix: str) -> None:
    """Replace FastAPI's own docs route (made in ``FastAPI()``, at ``host.docs_url``) with
    one whose page loads Swagger UI from the mounted app's assets. Nothing to replace
    without a docs route, and nothing to serve without the assets."""
    docs_url, openapi_url = host.docs_url, host.openapi_url
    if docs_url is None or openapi_url is None or swagger_ui_dir() is None:
        return

    async def swagger_ui_html(request: Request) -> HTMLResponse:
        # As FastAPI's own page does: every URL under the host's root path.
        root = request.scope.get("root_path", "").rstrip("/")
        assets = f"{root}{prefix}{ASSETS_PATH}"
        redirect = host.swagger_ui_oauth2_redirect_url
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{host.title} - Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
            oauth2_redirect_url=root + redirect if redirect else None,
            init_oauth=host.swagger_ui_init_oauth,
            swagger_ui_parameters={"validatorUrl": None, **(host.swagger_ui_parameters or {})},
        )

    routes = host.router.routes
    for index, route in enumerate(routes):
        if isinstance(route, Route) and route.path == docs_url:
            routes[index] = Route(
                docs_url, swagger_ui_html, name=route.name, include_in_schema=False
            )
            return


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
