"""The payment endpoints (DESIGN.md §6), added to the app when a PaymentService is wired.

- ``POST /api/payments/order {plan}``: an order for a paid plan, with what Razorpay
  Checkout needs to take the payment (order id, amount, currency, key id);
- ``POST /api/payments/verify {razorpay_order_id, razorpay_payment_id,
  razorpay_signature}``: what Checkout hands the browser after a successful payment;
  answers the usage with the plan applied;
- ``POST /api/payments/webhook``: Razorpay's server-to-server events. No bearer token:
  the ``X-Razorpay-Signature`` over the raw body is the credential, and the body is read
  as bytes and never re-serialised before it is checked. ``X-Razorpay-Event-Id`` dedupes
  redeliveries. Any signed delivery is answered 200 once it is recorded (unknown events
  too, so Razorpay stops retrying); a bad signature is a 400 and changes nothing;
- ``GET /api/payments``: the caller's payments, newest first.

Like every endpoint, these hold no rule: the core's :class:`~tokenplans.PaymentService`
decides, in the thread pool, and core errors map to responses in :mod:`.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tokenplans import (
    Checkout,
    Payment,
    PaymentOutcome,
    PaymentService,
    PlanCatalog,
    WebhookOutcome,
)

from .auth import principal_of
from .bodies import (
    Field,
    check_query,
    check_raw_json_limits,
    read_object,
    require_json_content_type,
)
from .endpoints import iso, usage_json
from .openapi import BODY_ERRORS, JSON, body, errors, ref, response

_ORDER = {"plan": Field(str)}
_VERIFY = {
    "razorpay_order_id": Field(str),
    "razorpay_payment_id": Field(str),
    "razorpay_signature": Field(str),
}


def payment_json(payment: Payment) -> dict[str, Any]:
    """One payment as the API shows it: ours and Razorpay's ids, the plan and the money."""
    return {
        "payment_id": payment.id,
        "order_id": payment.order_id,
        "razorpay_payment_id": payment.gateway_payment_id,
        "subject": payment.subject,
        "plan": payment.plan_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status.value,
        "created_at": iso(payment.created_at),
        "updated_at": iso(payment.updated_at),
    }


def checkout_json(checkout: Checkout) -> dict[str, Any]:
    """The order, shaped for Razorpay Checkout's options (``key``, ``amount``,
    ``currency``, ``order_id``, ``name``, ``description``, ``notes``)."""
    payment = checkout.payment
    return {
        "order_id": checkout.order_id,
        "amount": checkout.amount,
        "currency": checkout.currency,
        **checkout.public,  # the gateway's public fields: Razorpay's key_id
        "payment_id": payment.id,
        "receipt": payment.id,
        "plan": payment.plan_id,
        "name": checkout.plan_name,
        "description": f"{checkout.plan_name} plan",
        "notes": {"subject": payment.subject, "plan": payment.plan_id},
        "status": payment.status.value,
    }


def outcome_json(outcome: PaymentOutcome) -> dict[str, Any]:
    """Set-plan's shape (``status``, ``message``, the usage after) plus the payment."""
    return {
        "status": "ok",
        "message": outcome.message,
        "applied": outcome.applied,
        **usage_json(outcome.usage),
        "payment": payment_json(outcome.payment),
    }


def webhook_json(outcome: WebhookOutcome) -> dict[str, Any]:
    return {"status": outcome.status.value, "event": outcome.event, "order_id": outcome.order_id}


class PaymentEndpoints:
    """The four endpoints, bound to one :class:`PaymentService`."""

    def __init__(self, payments: PaymentService) -> None:
        self.payments = payments

    async def create_order(self, request: Request) -> JSONResponse:
        principal = principal_of(request)
        fields = await read_object(request, _ORDER)
        checkout = await run_in_threadpool(self.payments.create_order, principal, fields["plan"])
        return JSONResponse(checkout_json(checkout))

    async def verify(self, request: Request) -> JSONResponse:
        principal = principal_of(request)
        fields = await read_object(request, _VERIFY)

        outcome = await run_in_threadpool(self.payments.confirm, principal, fields)
        return JSONResponse(outcome_json(outcome))

    async def webhook(self, request: Request) -> JSONResponse:
        # The signature covers the raw bytes, so the service parses them itself; the
        # body parser's rules on media type, nesting and numbers still apply first.
        require_json_content_type(request)
        raw = await request.body()
        check_raw_json_limits(raw)

        def call() -> WebhookOutcome:
            return self.payments.handle_webhook(body=raw, headers=request.headers)

        return JSONResponse(webhook_json(await run_in_threadpool(call)))

    async def list_payments(self, request: Request) -> JSONResponse:
        principal = principal_of(request)
        check_query(request, frozenset())
        found = await run_in_threadpool(self.payments.payments, principal)
        return JSONResponse({"payments": [payment_json(p) for p in found]})


def payment_routes(payments: PaymentService) -> Sequence[BaseRoute]:
    """The payment routes over ``payments``, for ``create_app(extra_routes=...)``."""
    endpoints = PaymentEndpoints(payments)
    return [
        Route("/api/payments/order", endpoints.create_order, methods=["POST"], name="order"),
        Route("/api/payments/verify", endpoints.verify, methods=["POST"], name="verify"),
        Route("/api/payments/webhook", endpoints.webhook, methods=["POST"], name="webhook"),
        Route("/api/payments", endpoints.list_payments, methods=["GET"], name="payments"),
    ]


# -- OpenAPI ------------------------------------------------------------------------

_SECURED: list[dict[str, list[str]]] = [{"bearer": []}]
_ID = {"type": "string", "minLength": 1, "maxLength": 100}
_TIME = {"type": "string", "format": "date-time"}


def _nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"anyOf": [dict(schema), {"type": "null"}]}


def payment_schemas(catalog: PlanCatalog) -> dict[str, Any]:
    """Component schemas of the payment operations (the paid plans come from the catalog)."""
    paid_plan = {"type": "string", "enum": [p.id for p in catalog if not p.is_free]}
    payment_properties = {
        "payment_id": {"type": "string", "description": "Ours; the order's receipt."},
        "order_id": {"type": "string", "description": "Razorpay's order id."},
        "razorpay_payment_id": _nullable({"type": "string"}),
        "subject": {"type": "string"},
        "plan": {"type": "string"},
        "amount": {"type": "integer", "minimum": 0, "description": "Minor units (paise)."},
        "currency": {"type": "string"},
        "status": {"type": "string", "enum": ["created", "paid", "failed"]},
        "created_at": _TIME,
        "updated_at": _TIME,
    }
    return {
        "Payment": {
            "type": "object",
            "required": list(payment_properties),
            "properties": payment_properties,
        },
        "Payments": {
            "type": "object",
            "required": ["payments"],
            "properties": {"payments": {"type": "array", "items": ref("Payment")}},
        },
        "OrderRequest": {
            "type": "object",
            "required": ["plan"],
            "additionalProperties": False,
            "properties": {"plan": paid_plan},
        },
        "Order": {
            "type": "object",
            "required": ["order_id", "amount", "currency", "key_id", "payment_id", "plan"],
            "properties": {
                "order_id": {"type": "string", "description": "Checkout's `order_id`."},
                "amount": {"type": "integer", "minimum": 0, "description": "Checkout's `amount`."},
                "currency": {"type": "string", "description": "Checkout's `currency`."},
                "key_id": {"type": "string", "description": "Checkout's `key`."},
                "payment_id": {"type": "string"},
                "receipt": {"type": "string", "maxLength": 40},
                "plan": {"type": "string"},
                "name": {"type": "string"},
                "description": {"type": "string"},
                "notes": {"type": "object", "additionalProperties": {"type": "string"}},
                "status": {"const": "created"},
            },
        },
        "VerifyRequest": {
            "type": "object",
            "required": list(_VERIFY),
            "additionalProperties": False,
            "properties": {
                "razorpay_order_id": _ID,
                "razorpay_payment_id": _ID,
                "razorpay_signature": {
                    "type": "string",
                    "description": "Hex HMAC-SHA256 of `order_id|payment_id`.",
                },
            },
        },
        "VerifyResponse": {
            "type": "object",
            "required": ["status", "message", "applied", "payment", "plan", "token_quota"],
            "properties": {
                "status": {"const": "ok"},
                "message": {"type": "string"},
                "applied": {
                    "type": "boolean",
                    "description": "False when the payment had been applied already.",
                },
                "plan": {"type": "string"},
                "token_quota": {"type": "integer", "minimum": 0},
                "token_used": {"type": "integer", "minimum": 0},
                "remaining": {"type": "integer", "minimum": 0},
                "plan_end_at": _nullable(_TIME),
                "period_start": _TIME,
                "period_end": _TIME,
                "subject": {"type": "string"},
                "payment": ref("Payment"),
            },
        },
        "WebhookResult": {
            "type": "object",
            "required": ["status", "event"],
            "properties": {
                "status": {
                    "type": "string",
                    "enum": ["applied", "already_applied", "failed", "duplicate", "ignored"],
                },
                "event": {"type": "string"},
                "order_id": _nullable({"type": "string"}),
            },
        },
        "PaymentRefused": {
            "type": "object",
            "required": ["error", "reason"],
            "properties": {
                "error": {"const": "payment refused"},
                "reason": {
                    "type": "string",
                    "description": (
                        "`free_plan`, `lower_plan`, `no_term`, `bad_signature` or "
                        "`malformed_event`."
                    ),
                },
                "message": {"type": "string"},
            },
        },
    }


def _refused(description: str) -> dict[str, Any]:
    return response(description, "PaymentRefused")


_GATEWAY_DOWN = response("Razorpay is unreachable, too slow, or refused the order.")

PAYMENT_PATHS: Mapping[str, Any] = {
    "/api/payments/order": {
        "post": {
            "summary": "Create an order for a paid plan (upgrade or renewal)",
            "tags": ["payments"],
            "security": _SECURED,
            "requestBody": body("OrderRequest", "The plan to buy."),
            "responses": {
                "200": response("What Razorpay Checkout needs to take the payment.", "Order"),
                **errors("401", *BODY_ERRORS, "503"),
                "400": {
                    "description": (
                        "An unknown plan (`invalid plan`), or one that cannot be bought: "
                        "free, or below the current plan (`payment refused`)."
                    ),
                    "content": {JSON: {"schema": {"anyOf": [ref("PaymentRefused"), ref("Error")]}}},
                },
                "429": response(
                    "Too many open orders (`too many open orders`, reason "
                    "`too_many_open_orders`): pay one, or retry after `Retry-After` seconds."
                ),
                "502": _GATEWAY_DOWN,
            },
        }
    },
    "/api/payments/verify": {
        "post": {
            "summary": "Confirm a payment with Checkout's signature; applies the plan once",
            "tags": ["payments"],
            "security": _SECURED,
            "requestBody": body("VerifyRequest", "The three fields Checkout's handler gets."),
            "responses": {
                "200": response("The usage with the paid plan applied.", "VerifyResponse"),
                **errors("401", *BODY_ERRORS, "503"),
                "400": _refused("The signature does not match; nothing changed."),
                "404": response("No such order belongs to the caller."),
            },
        }
    },
    "/api/payments/webhook": {
        "post": {
            "summary": "Razorpay webhook (signed with the webhook secret, no bearer token)",
            "tags": ["payments"],
            "parameters": [
                {
                    "name": "X-Razorpay-Signature",
                    "in": "header",
                    "required": True,
                    "description": "Hex HMAC-SHA256 of the raw body with the webhook secret.",
                    "schema": {"type": "string"},
                },
                {
                    "name": "X-Razorpay-Event-Id",
                    "in": "header",
                    "required": False,
                    "description": "Razorpay's event id; a redelivery carries the same one.",
                    "schema": {"type": "string", "maxLength": 100},
                },
            ],
            "requestBody": {
                "required": True,
                "description": "Razorpay's event JSON, exactly as sent.",
                "content": {JSON: {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": response("Recorded (or ignored: not an event we act on).", "WebhookResult"),
                **errors(*BODY_ERRORS, "503"),
                "400": _refused("Bad or missing signature, or not an event; nothing changed."),
            },
        }
    },
    "/api/payments": {
        "get": {
            "summary": "The caller's payments, newest first",
            "tags": ["payments"],
            "security": _SECURED,
            "responses": {
                "200": response("The payments.", "Payments"),
                **errors("401", "422", "503"),
            },
        }
    },
}
