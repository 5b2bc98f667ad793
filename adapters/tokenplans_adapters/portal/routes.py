"""The usage page's routes (docs: usage-page.md).

- ``POST /api/tokens/portal-link`` (the user's bearer token) and
  ``POST /api/admin/accounts/{subject}/portal-link`` (an admin's: a back end opening the
  page for one of its users) answer ``{url, expires_at}``: a link valid for
  ``link_ttl_seconds``.
- ``GET /account/open?token=...`` checks the link, sets the session cookie (HttpOnly,
  ``SameSite=Strict``, ``Secure`` over https, path ``/account``) and sends the browser on to
  ``/account`` from a page of ours (a meta refresh): a ``SameSite=Strict`` cookie is not
  sent on a redirect chain that another site started (a link in the host app or an
  e-mail), but it is on a navigation our own page starts.
- ``GET /account`` renders the page for the session's subject, and only that subject:
  nothing in a request can name another.
- ``POST /account/upgrade`` (a plan) starts the configured payment flow;
  ``POST /account/pay`` completes an order with the offline gateway (development only:
  only when the composition root hands over an offline payer); ``POST /account/sign-out``.
  Every form carries the session's CSRF token, checked on every POST.

Every page is sent with a strict Content-Security-Policy (no script at all, styles from
the one stylesheet this package serves), ``frame-ancestors`` as configured (none by
default, with ``X-Frame-Options: DENY``), ``Referrer-Policy: no-referrer`` (the link's
token must not leak) and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote

import attrs
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute

from tokenplans import (
    ADMIN_SCOPE,
    Checkout,
    GatewayError,
    PaymentError,
    PaymentService,
    PermissionDeniedError,
    Principal,
    TokenService,
    UnknownPackError,
    UnknownPlanError,
)
from tokenplans_adapters.http.auth import admin_of, principal_of
from tokenplans_adapters.http.offload import in_thread
from tokenplans_adapters.http.openapi import errors, operation
from tokenplans_adapters.http.routing import Operation, Resource
from tokenplans_adapters.http.snapshot import iso

from . import view
from .assets import STYLESHEET, STYLESHEET_VERSION, templates
from .signing import Session, Signer

COOKIE_NAME = "tokenplans_portal"
DEFAULT_LINK_TTL_SECONDS = 300
DEFAULT_SESSION_TTL_SECONDS = 3600
#: The most bytes a form on the page may post (two short fields).
MAX_FORM_BYTES = 4096
RECENT_ENTRIES = 15
#: What the page reads holds with: every caller's open holds on the session's own
#: account (a back end places most of them), read-only, never another subject's.
_HOLD_READER = Principal("tokenplans:portal", frozenset({ADMIN_SCOPE}))  # type: ignore[arg-type]
_TAG = "Usage page"

#: Signs a checkout proof for an order id, as the offline gateway's checkout would.
OfflinePayer = Callable[[str], Mapping[str, object]]


@attrs.frozen
class PortalOptions:
    """The page's settings. ``secret`` signs links and sessions (32 bytes or more);
    ``frame_ancestors`` are the origins that may embed the page (``()``: none);
    ``offline_payer`` (development only) lets the page complete an order itself;
    ``base_url`` is where links point (default: derived from the request)."""

    secret: str = attrs.field(repr=False)
    link_ttl_seconds: int = DEFAULT_LINK_TTL_SECONDS
    session_ttl_seconds: int = DEFAULT_SESSION_TTL_SECONDS
    frame_ancestors: tuple[str, ...] = ()
    offline_payer: OfflinePayer | None = None
    base_url: str = ""


class _Refused(Exception):
    """A page that cannot be shown: its status, title and message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


class Portal:
    """The page's routes over ``service`` (and ``payments``, for its buttons)."""

    def __init__(
        self,
        service: TokenService,
        options: PortalOptions,
        *,
        payments: PaymentService | None = None,
    ) -> None:
        for name in ("link_ttl_seconds", "session_ttl_seconds"):
            if getattr(options, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        self.service = service
        self.payments = payments
        self.options = options
        self.signer = Signer(options.secret)
        self.resource = Resource(operations=self._operations())

    # -- wiring --------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """The page's routes, for ``create_app(extra_routes=...)``."""
        return self.resource.all_routes()

    def openapi_paths(self) -> dict[str, dict[str, Any]]:
        """Their OpenAPI paths, for ``create_app(extra_openapi_paths=...)``."""
        paths: dict[str, dict[str, Any]] = {}
        for op in self.resource.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = dict(op.spec)
        return paths

    def _now(self) -> datetime:
        return self.service.clock.now()

    # -- links ---------------------------------------------------------------------

    def _link(self, request: Request, subject: str) -> dict[str, Any]:
        expires_at = self._now() + timedelta(seconds=self.options.link_ttl_seconds)
        token = self.signer.sign("link", subject, expires_at)
        base = self.options.base_url.rstrip("/") or _origin(request) + _root(request)
        return {
            "url": f"{base}/account/open?token={quote(token, safe='')}",
            "expires_at": iso(expires_at),
        }

    async def user_link(self, request: Request) -> JSONResponse:
        principal = principal_of(request)
        return JSONResponse(self._link(request, principal.subject))

    async def admin_link(self, request: Request) -> JSONResponse:
        admin, subject = admin_of(request)
        await in_thread(self.service.usage, admin, subject=subject)  # refuses a bad subject
        return JSONResponse({**self._link(request, subject), "subject": subject})

    async def open_link(self, request: Request) -> Response:
        now = self._now()
        link = self.signer.check("link", request.query_params.get("token"), now)
        if link is None:
            return self._message(
                request,
                403,
                "This link has expired",
                "Links to this page work for a few minutes only. Go back to the app and "
                "open your usage page again.",
            )
        expires_at = now + timedelta(seconds=self.options.session_ttl_seconds)
        cookie, _session = self.signer.new_session(link.subject, expires_at)
        response = self._render(
            request, "opening.html", {"target": _root(request) + "/account"}, status=200
        )
        self._set_cookie(request, response, cookie, self.options.session_ttl_seconds)
        return response

    # -- the page ------------------------------------------------------------------

    def _session(self, request: Request) -> Session:
        session = self.signer.check("session", request.cookies.get(COOKIE_NAME), self._now())
        if session is None:
            raise _Refused(
                401,
                "Your session has ended",
                "For your security this page signs you out after a while. Go back to the "
                "app and open your usage page again.",
            )
        return session

    async def account(self, request: Request) -> Response:
        try:
            session = self._session(request)
        except _Refused as refused:
            return self._refused(request, refused)
        notice = (
            "Payment received: your account is updated." if "paid" in request.query_params else ""
        )
        context = await in_thread(self._account_context, session.subject)
        return self._render(
            request, "account.html", {**context, "session": session, "notice": notice}
        )

    def _account_context(self, subject: str) -> dict[str, Any]:
        service, principal, now = self.service, Principal(subject), self._now()
        usage = service.usage(principal)
        today: date = now.date()
        report = service.usage_report(
            principal,
            start=today - timedelta(days=view.CHART_DAYS - 1),
            end=today,
            group_by=("day", "model"),
        )
        catalog = service.catalog
        plan = catalog.get(usage.plan) if usage.plan in catalog else None
        upgrades = (
            [
                candidate
                for candidate in catalog
                if not candidate.is_free
                and (
                    plan is None
                    or candidate.rank > plan.rank
                    or (candidate == plan and candidate.has_term)
                )
            ]
            if self.payments is not None
            else []
        )
        return {
            "usage": usage,
            "plan": plan,
            "plan_name": plan.name if plan else usage.plan,
            "bar": view.usage_bar(usage),
            "resets": view.when(usage.period_end),
            "resets_in": view.until(usage.period_end, now),
            "period_start": view.when(usage.period_start),
            "term_end": view.when(usage.plan_end_at) if usage.plan_end_at else "",
            "chart": view.chart(report.rows, today),
            "narrow_chart": view.chart(report.rows, today, size=view.NARROW),
            "models": view.top_models(report.rows),
            "holds": service.holds(_HOLD_READER, subject=subject),
            "entries": service.history(principal, limit=RECENT_ENTRIES).entries,
            "upgrades": upgrades,
            # Credit lots (live, in burn order: source, amount, remaining, expires_at, ...)
            # and the catalog's packs (id, name, credits, price, currency), on sale to
            # anyone at any time: account.html lists them as given.
            "lots": usage.lots,
            "packs": list(catalog.packs) if self.payments is not None else [],
            "when": view.when,
            "short": view.short,
            "money": view.money,
            "model_label": view.model_label,
            "kind_label": view.kind_label,
        }

    # -- forms ---------------------------------------------------------------------

    async def _form(self, request: Request, session: Session) -> dict[str, str]:
        """The posted form's fields, once its CSRF token matches the session's."""
        if request.headers.get("content-type", "").split(";")[0].strip() != (
            "application/x-www-form-urlencoded"
        ):
            raise _Refused(415, "This form cannot be read", "Send the page's own form.")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise _Refused(413, "This form is too large", "Send the page's own form.")
        try:
            parsed = parse_qs(body.decode("ascii"), max_num_fields=8, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            parsed = {}
        fields = {name: values[0] for name, values in parsed.items() if len(values) == 1}
        token = fields.get("csrf", "")
        if not session.csrf or not hmac.compare_digest(token.encode(), session.csrf.encode()):
            raise _Refused(
                403,
                "This form has expired",
                "The page you sent it from is out of date. Reload it and try again.",
            )
        return fields

    async def upgrade(self, request: Request) -> Response:
        try:
            session = self._session(request)
            fields = await self._form(request, session)
            payments = self._paying()
            principal = Principal(session.subject)
            checkout = await in_thread(
                _order, payments, principal, fields.get("plan"), fields.get("pack")
            )
        except _Refused as refused:
            return self._refused(request, refused)
        public = dict(checkout.public)
        return self._render(
            request,
            "checkout.html",
            {
                "session": session,
                "checkout": checkout,
                "amount": view.money(checkout.amount, checkout.currency),
                "checkout_url": public.get("checkout_url", ""),
                "offline": self.options.offline_payer is not None
                and checkout.payment.provider == payments.default_provider,
            },
        )

    async def pay(self, request: Request) -> Response:
        try:
            session = self._session(request)
            fields = await self._form(request, session)
            payer = self.options.offline_payer
            if payer is None:
                raise _Refused(404, "Not found", "There is no such page.")
            payments = self._paying()
            order_id = fields.get("order_id", "")
            principal = Principal(session.subject)

            def confirm() -> None:
                try:
                    payments.confirm(principal, payer(order_id))
                except PaymentError as error:
                    raise _Refused(400, "The payment did not go through", str(error)) from None

            await in_thread(confirm)
        except _Refused as refused:
            return self._refused(request, refused)
        return RedirectResponse(_root(request) + "/account?paid=1", status_code=303)

    async def sign_out(self, request: Request) -> Response:
        try:
            session = self._session(request)
            await self._form(request, session)
        except _Refused as refused:
            return self._refused(request, refused)
        response = self._message(
            request, 200, "You are signed out", "Open your usage page from the app again."
        )
        self._set_cookie(request, response, "", 0)
        return response

    def _paying(self) -> PaymentService:
        if self.payments is None:
            raise _Refused(404, "Not found", "Payments are not set up on this server.")
        return self.payments

    # -- responses -----------------------------------------------------------------

    async def stylesheet(self, _request: Request) -> Response:
        return Response(
            STYLESHEET,
            media_type="text/css",
            headers={
                "Cache-Control": "public, max-age=31536000, immutable",
                "X-Content-Type-Options": "nosniff",
            },
        )

    def _render(
        self, request: Request, name: str, context: Mapping[str, Any], *, status: int = 200
    ) -> HTMLResponse:
        root = _root(request)
        html = templates.get_template(name).render(
            root=root,
            stylesheet=f"{root}/account/static/portal-{STYLESHEET_VERSION}.css",
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=self.security_headers())

    def _message(self, request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return self._render(
            request, "message.html", {"title": title, "message": message}, status=status
        )

    def _refused(self, request: Request, refused: _Refused) -> HTMLResponse:
        return self._message(request, refused.status, refused.title, refused.message)

    def security_headers(self) -> dict[str, str]:
        """The headers every page is sent with."""
        ancestors = " ".join(self.options.frame_ancestors) or "'none'"
        headers = {
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                f"base-uri 'none'; frame-ancestors {ancestors}"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }
        if not self.options.frame_ancestors:
            headers["X-Frame-Options"] = "DENY"
        elif self.options.frame_ancestors == ("'self'",):
            headers["X-Frame-Options"] = "SAMEORIGIN"
        return headers

    def _set_cookie(self, request: Request, response: Response, value: str, max_age: int) -> None:
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=max_age,
            path=_root(request) + "/account",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )

    # -- the route table -----------------------------------------------------------

    def _operations(self) -> Sequence[Operation]:
        link = {
            "description": "A link to the usage page, valid for a few minutes.",
            "content": {"application/json": {"schema": _LINK_SCHEMA}},
        }
        html = {"description": "An HTML page.", "content": {"text/html": {"schema": {}}}}
        form = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"csrf": {"type": "string"}}}
                }
            },
        }
        page_errors = {
            **errors(),
            "401": {**html, "description": "No session, or it has ended."},
            "403": {**html, "description": "The form's CSRF token does not match."},
        }
        return [
            Operation(
                "POST",
                "/api/tokens/portal-link",
                self.user_link,
                operation(
                    "createPortalLink",
                    "A short-lived link that opens the caller's usage page",
                    link,
                    tag=_TAG,
                ),
                name="portal-link",
            ),
            Operation(
                "POST",
                "/api/admin/accounts/{subject}/portal-link",
                self.admin_link,
                operation(
                    "createAdminPortalLink",
                    "A short-lived link that opens a subject's usage page (a back end's)",
                    link,
                    tag=_TAG,
                    parameters=[
                        {
                            "name": "subject",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    failures=("403", "422"),
                ),
                name="admin-portal-link",
            ),
            Operation(
                "GET",
                "/account/open",
                self.open_link,
                {
                    "operationId": "openPortalLink",
                    "summary": "Open a portal link: sets the session cookie, then shows the page",
                    "tags": [_TAG],
                    "parameters": [
                        {
                            "name": "token",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": html,
                        "403": {**html, "description": "The link is invalid or expired."},
                        **errors(),
                    },
                },
                name="portal-open",
            ),
            Operation(
                "GET",
                "/account",
                self.account,
                {
                    "operationId": "usagePage",
                    "summary": "The usage page (HTML) of the session's subject",
                    "tags": [_TAG],
                    "parameters": [
                        {
                            "name": "paid",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"200": html, **page_errors},
                },
                name="portal-account",
            ),
            Operation(
                "POST",
                "/account/upgrade",
                self.upgrade,
                _form_spec("portalUpgrade", "Start paying for a plan", html, form, page_errors),
                name="portal-upgrade",
            ),
            Operation(
                "POST",
                "/account/pay",
                self.pay,
                _form_spec(
                    "portalOfflinePay",
                    "Complete an order with the offline gateway (development only)",
                    {"description": "See other: back to the page."},
                    form,
                    page_errors,
                    status="303",
                ),
                name="portal-pay",
            ),
            Operation(
                "POST",
                "/account/sign-out",
                self.sign_out,
                _form_spec("portalSignOut", "End the page's session", html, form, page_errors),
                name="portal-sign-out",
            ),
            Operation(
                "GET",
                f"/account/static/portal-{STYLESHEET_VERSION}.css",
                self.stylesheet,
                {
                    "operationId": "portalStylesheet",
                    "summary": "The page's stylesheet",
                    "tags": [_TAG],
                    "responses": {
                        "200": {"description": "CSS.", "content": {"text/css": {"schema": {}}}},
                        **errors(),
                    },
                },
                name="portal-stylesheet",
            ),
        ]


_LINK_SCHEMA = {
    "type": "object",
    "required": ["url", "expires_at"],
    "properties": {
        "url": {"type": "string", "description": "Open it in a browser, once, soon."},
        "expires_at": {"type": "string", "format": "date-time"},
        "subject": {"type": "string"},
    },
}


def _form_spec(
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    form: dict[str, Any],
    page_errors: dict[str, Any],
    *,
    status: str = "200",
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": [_TAG],
        "requestBody": form,
        "responses": {status: ok, **page_errors},
    }


def _order(
    payments: PaymentService, principal: Principal, plan: str | None, pack: str | None
) -> Checkout:
    """An order for the form's ``plan`` or, in a pack's form, its ``pack``."""
    what = "pack" if pack is not None and plan is None else "plan"
    try:
        if pack is not None and plan is None:
            return payments.create_order(principal, pack=pack)
        return payments.create_order(principal, plan or "")
    except (PaymentError, UnknownPlanError, UnknownPackError, PermissionDeniedError) as error:
        raise _Refused(400, f"This {what} cannot be bought now", str(error)) from None
    except GatewayError as error:
        raise _Refused(
            502, "The payment provider did not answer", f"Try again in a minute. ({error})"
        ) from None


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"
