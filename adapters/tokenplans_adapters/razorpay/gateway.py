"""The Razorpay payment gateway: the Orders API over HTTPS, and the two signatures.

The HTTP client is httpx (the ``razorpay`` extra), not the standard library's urllib:
one pooled client keeps TLS connections to Razorpay alive across requests, its timeouts
are explicit per phase, and its errors are typed (``TimeoutException`` apart from other
``TransportError``s), so each failure maps to a clear :class:`GatewayError`. It is not
the ``razorpay`` SDK, whose signature checks misbehave (see :mod:`.signatures`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import httpx

from tokenplans.ports import MAX_GATEWAY_ID_LENGTH, CheckoutStart, GatewayError

from .protocol import DEFAULT_API_URL, RazorpayProtocol, check_receipt, order_notes
from .signatures import secret_bytes

_HTTP_CLIENT_ERROR = 400
_HTTP_SERVER_ERROR = 500


class RazorpayGateway(RazorpayProtocol):
    """Razorpay, as the core's :class:`~tokenplans.ports.PaymentGateway`.

    ``webhook_secrets`` holds the current webhook secret first and, while a secret is
    being rotated, the previous one: Razorpay keeps retrying old deliveries signed with
    it. With none, every webhook is refused (payments still confirm through verify).
    Empty secrets are refused here, so a missing setting stops the service at start-up.
    Call :meth:`close` (or use it as a context manager) to release the connection pool.
    """

    def __init__(
        self,
        key_id: str,
        key_secret: str | bytes,
        webhook_secrets: Sequence[str | bytes] = (),
        *,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 10.0,
    ) -> None:
        if not isinstance(key_id, str) or not key_id:
            raise ValueError("the Razorpay key id must not be empty")
        if isinstance(webhook_secrets, str | bytes):
            raise TypeError("webhook_secrets is a sequence of secrets, not one secret")
        self._key_secret = secret_bytes("the Razorpay key secret", key_secret)
        super().__init__(
            key_id,
            self._key_secret,
            tuple(secret_bytes("a Razorpay webhook secret", secret) for secret in webhook_secrets),
        )
        self._api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._client = httpx.Client(
            base_url=self._api_url + "/",
            auth=httpx.BasicAuth(key_id, self._key_secret),
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json"},
        )

    def __repr__(self) -> str:  # never the secrets
        return f"RazorpayGateway(key_id={self._key_id!r}, api_url={self._api_url!r})"

    def start_checkout(
        self, *, payment_id: str, subject: str, plan_id: str, amount: int, currency: str
    ) -> CheckoutStart:
        """An order whose receipt is our payment id; Checkout needs its id and our key id."""
        order_id = self.create_order(
            amount=amount,
            currency=currency,
            receipt=check_receipt(payment_id),
            notes=order_notes(payment_id=payment_id, subject=subject, plan_id=plan_id),
        )
        return self.resume_checkout(order_id=order_id)

    def create_order(
        self, *, amount: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> str:
        """POST /orders; the order id Razorpay assigned, or :class:`GatewayError` saying
        what went wrong (unreachable, too slow, refused and why, failed, or nonsense)."""
        order = {"amount": amount, "currency": currency, "receipt": receipt, "notes": notes}
        try:
            response = self._client.post("orders", json=order)
        except httpx.TimeoutException:
            raise GatewayError(
                f"Razorpay did not answer within {self._timeout:g} s; try again"
            ) from None
        except httpx.TransportError as error:
            raise GatewayError(
                f"cannot reach Razorpay at {self._api_url}: {type(error).__name__}"
            ) from None
        status = response.status_code
        if status >= _HTTP_SERVER_ERROR:
            raise GatewayError(f"Razorpay failed to create the order (HTTP {status}); try again")
        if status >= _HTTP_CLIENT_ERROR:
            raise GatewayError(
                f"Razorpay refused the order (HTTP {status}): {_error_description(response)}"
            )
        try:
            body: Any = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GatewayError(
                f"Razorpay answered HTTP {status} with a body that is not JSON"
            ) from None
        order_id = body.get("id") if isinstance(body, dict) else None
        if (
            not isinstance(order_id, str)
            or not 1 <= len(order_id) <= MAX_GATEWAY_ID_LENGTH
            or not order_id.isascii()
        ):
            raise GatewayError("Razorpay answered without an order id")
        if body.get("amount", amount) != amount or body.get("currency", currency) != currency:
            raise GatewayError(f"Razorpay created order {order_id} for a different amount")
        return order_id

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RazorpayGateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _error_description(response: httpx.Response) -> str:
    """Razorpay's ``{"error": {"description": ...}}``, or the start of whatever came."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    description = error.get("description") if isinstance(error, dict) else None
    if isinstance(description, str) and description:
        return description[:300]
    return response.reason_phrase or "no reason given"
