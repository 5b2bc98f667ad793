"""The usage page: ``GET /account``, server-rendered HTML opened with a short-lived signed
link (``POST /api/tokens/portal-link``). Starlette routes the composition root adds to the
HTTP app; the page reads through :class:`tokenplans.TokenService` and starts payments
through :class:`tokenplans.PaymentService`. Docs: usage-page.md."""

from __future__ import annotations

from .routes import (
    COOKIE_NAME,
    DEFAULT_LINK_TTL_SECONDS,
    DEFAULT_SESSION_TTL_SECONDS,
    Portal,
    PortalOptions,
)
from .signing import Session, Signer

__all__ = [
    "COOKIE_NAME",
    "DEFAULT_LINK_TTL_SECONDS",
    "DEFAULT_SESSION_TTL_SECONDS",
    "Portal",
    "PortalOptions",
    "Session",
    "Signer",
]
