"""What the endpoints share: the wired use cases and settings on ``app.state``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from starlette.requests import Request

from tokenplans import PaymentService, TokenService


@attrs.frozen
class ApiState:
    """What the endpoints need, kept on ``app.state.tokenplans`` by ``create_app``.
    ``payments`` is ``None`` when no payment gateway is wired (and no payment route
    exists)."""

    service: TokenService
    readiness: Callable[[], str | None]
    title: str
    base_url: str
    openapi: dict[str, Any]
    payments: PaymentService | None = None
    #: Raises ``ValueError`` (why) for a URL a webhook may not be sent to; ``None``
    #: checks the scheme only (the composition root passes its target check).
    webhook_target: Callable[[str], None] | None = None


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.tokenplans
    return state
