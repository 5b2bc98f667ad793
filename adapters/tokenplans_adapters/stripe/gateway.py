"""The Stripe payment gateway: Checkout Sessions over Stripe's REST API, with httpx.

No Stripe SDK at run time: creating and reading a session is two form-encoded requests,
the webhook signature is a few lines of ``hmac`` (:mod:`.signatures`), and the SDK would
bring ``requests`` with it. One pooled httpx client keeps TLS connections alive; its
errors are typed, so each failure maps to a clear :class:`GatewayError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from tokenplans.ports import CheckoutStart, GatewayError

from .protocol import (
    CHECKOUT_URL_FIELD,
    DEFAULT_API_URL,
    StripeProtocol,
    session_fields,
    session_form,
)
from .signatures import TOLERANCE_SECONDS, secret_bytes

_HTTP_CLIENT_ERROR = 400
_HTTP_SERVER_ERROR = 500
_HTTP_TOO_MANY = 429
_SECRET_KEY_PREFIXES = ("sk_", "rk_")


class StripeGateway(StripeProtocol):
    """Stripe, as the core's :class:`~tokenplans.ports.PaymentGateway`.

    ``secret_key`` is the account's secret (``sk_...``) or restricted (``rk_...``) key;
    ``webhook_secrets`` the webhook endpoint's signing secret (``whsec_...``), at least
    one, since a Stripe payment is confirmed by webhook only. Each order is a Checkout
    Session sent with an ``Idempotency-Key`` made from our payment id, so the one retry
    after a network error or a 5xx cannot make a second session. Call :meth:`close` (or
    use it as a context manager) to release the connection pool.
    """

    def __init__(
        self,
        secret_key: str,
        webhook_secrets: Sequence[str | bytes],
        *,
        success_url: str,
        cancel_url: str | None = None,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 10.0,
        tolerance: int = TOLERANCE_SECONDS,
        now: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(secret_key, str) or not secret_key.startswith(_SECRET_KEY_PREFIXES):
            raise ValueError("the Stripe secret key must be a secret (sk_) or restricted (rk_) key")
        if isinstance(webhook_secrets, str | bytes):
            raise TypeError("webhook_secrets is a sequence of secrets, not one secret")
        secrets = tuple(secret_bytes("a Stripe webhook secret", each) for each in webhook_secrets)
        if not secrets:
            raise ValueError("Stripe needs its webhook secret: payments are confirmed by webhook")
        if not success_url:
            raise ValueError("Stripe Checkout needs a success URL")
        super().__init__(secrets, tolerance=tolerance, now=now)
        self._success_url = success_url
        self._cancel_url = cancel_url
        self._api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._client = httpx.Client(
            base_url=self._api_url + "/v1/",
            auth=httpx.BasicAuth(secret_key, ""),
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json"},
        )

    def __repr__(self) -> str:  # never the secrets
        return f"StripeGateway(api_url={self._api_url!r})"

    def start_checkout(
        self, *, payment_id: str, subject: str, plan_id: str, amount: int, currency: str
    ) -> CheckoutStart:
        """A Checkout Session for the plan, at the catalog's amount and currency; the
        browser pays it at its ``checkout_url``."""
        form = session_form(
            payment_id=payment_id,
            subject=subject,
            plan_id=plan_id,
            amount=amount,
            currency=currency,
            success_url=self._success_url,
            cancel_url=self._cancel_url,
        )
        body = self._call(
            "POST",
            "checkout/sessions",
            "create the checkout session",
            data=form,
            headers={"Idempotency-Key": f"tokenplans-order-{payment_id}"},
        )
        session_id, url, session = self._session(body)
        if (
            session.get("amount_total", amount) != amount
            or str(session.get("currency", currency)).lower() != currency.lower()
        ):
            raise GatewayError(f"Stripe created session {session_id} for a different amount")
        if url is None:
            raise GatewayError(f"Stripe created session {session_id} without a checkout URL")
        return CheckoutStart(session_id, {CHECKOUT_URL_FIELD: url})

    def resume_checkout(self, *, order_id: str) -> CheckoutStart:
        """The open session's checkout URL, asked of Stripe. A session that is no longer
        open (paid and processing, or expired) cannot be paid again: :class:`GatewayError`."""
        path = f"checkout/sessions/{quote(order_id, safe='')}"
        body = self._call("GET", path, "read the session")
        session_id, url, session = self._session(body)
        if session.get("status") != "open" or url is None:
            raise GatewayError(
                f"Stripe checkout session {session_id} for this plan is no longer open "
                f"({session.get('status')}): its payment is being processed, or it expired; "
                "see GET /api/payments, or order again in an hour"
            )
        return CheckoutStart(session_id, {CHECKOUT_URL_FIELD: url})

    def _session(self, body: Any) -> tuple[str, str | None, Any]:
        try:
            return session_fields(body)
        except ValueError:
            raise GatewayError("Stripe answered without a checkout session id") from None

    def _call(
        self,
        method: str,
        path: str,
        doing: str,
        *,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Stripe's JSON answer, or :class:`GatewayError` saying what went wrong. A network
        error or a 5xx is retried once (a POST under the same idempotency key)."""
        for attempt in (1, 2):
            try:
                response = self._client.request(method, path, data=data, headers=headers)
            except httpx.TimeoutException:
                if attempt == 1:
                    continue
                raise GatewayError(
                    f"Stripe did not answer within {self._timeout:g} s; try again"
                ) from None
            except httpx.TransportError as error:
                if attempt == 1:
                    continue
                raise GatewayError(
                    f"cannot reach Stripe at {self._api_url}: {type(error).__name__}"
                ) from None
            status = response.status_code
            if status >= _HTTP_SERVER_ERROR and attempt == 1:
                continue
            break
        if status >= _HTTP_SERVER_ERROR:
            raise GatewayError(f"Stripe failed to {doing} (HTTP {status}); try again")
        if status == _HTTP_TOO_MANY:
            raise GatewayError(f"Stripe is rate limiting us (HTTP {status}); try again")
        if status >= _HTTP_CLIENT_ERROR:
            raise GatewayError(
                f"Stripe refused to {doing} (HTTP {status}): {_error_message(response)}"
            )
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GatewayError(
                f"Stripe answered HTTP {status} with a body that is not JSON"
            ) from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> StripeGateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _error_message(response: httpx.Response) -> str:
    """Stripe's ``{"error": {"message": ...}}``, or the reason phrase."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(message, str) and message:
        return message[:300]
    return response.reason_phrase or "no reason given"
