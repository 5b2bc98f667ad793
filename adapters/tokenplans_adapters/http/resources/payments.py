"""The payments resource, in the app when a PaymentService is wired (README: Payments).

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

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tokenplans import (
    Checkout,
    Payment,
    PaymentOutcome,
    PaymentService,
    PaymentStatus,
    PlanCatalog,
    WebhookOutcome,
    WebhookStatus,
)
from tokenplans.ports import MAX_GATEWAY_ID_LENGTH
from tokenplans_adapters.http.auth import principal_of
from tokenplans_adapters.http.bodies import (
    Field,
    check_raw_json_limits,
    read_object,
    require_json_content_type,
)
from tokenplans_adapters.http.offload import in_thread
from tokenplans_adapters.http.openapi import (
    BODY_ERRORS,
    COUNT,
    JSON,
    SECURED,
    TIME,
    body,
    errors,
    example,
    nullable,
    ref,
    refusal,
    response,
)
from tokenplans_adapters.http.routing import Operation, Resource
from tokenplans_adapters.http.snapshot import USAGE_PROPERTIES, iso, usage_json
from tokenplans_adapters.http.state import state_of

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


def _payments(request: Request) -> PaymentService:
    payments = state_of(request).payments
    if payments is None:  # pragma: no cover - the routes exist only with a service
        raise RuntimeError("no PaymentService is wired")
    return payments


async def create_order(request: Request) -> JSONResponse:
    principal = principal_of(request)
    fields = await read_object(request, _ORDER)
    checkout = await in_thread(_payments(request).create_order, principal, fields["plan"])
    return JSONResponse(checkout_json(checkout))


async def verify(request: Request) -> JSONResponse:
    principal = principal_of(request)
    fields = await read_object(request, _VERIFY)
    outcome = await in_thread(_payments(request).confirm, principal, fields)
    return JSONResponse(outcome_json(outcome))


async def webhook(request: Request) -> JSONResponse:
    # The signature covers the raw bytes, so the service parses them itself; the body
    # parser's rules on media type, nesting and numbers still apply first.
    require_json_content_type(request)
    raw = await request.body()
    check_raw_json_limits(raw)
    payments = _payments(request)

    def call() -> WebhookOutcome:
        return payments.handle_webhook(body=raw, headers=request.headers)

    return JSONResponse(webhook_json(await in_thread(call)))


async def list_payments(request: Request) -> JSONResponse:
    principal = principal_of(request)
    found = await in_thread(_payments(request).payments, principal)
    return JSONResponse({"payments": [payment_json(p) for p in found]})


# -- OpenAPI ------------------------------------------------------------------------

_ID = {"type": "string", "minLength": 1, "maxLength": MAX_GATEWAY_ID_LENGTH}
_PAID_AMOUNT = {**COUNT, "description": "Minor units (paise)."}


def _schemas(catalog: PlanCatalog) -> dict[str, Any]:
    """Component schemas of the payment operations (the paid plans come from the catalog)."""
    paid = [plan.id for plan in catalog if not plan.is_free]
    paid_plan = {"type": "string", "enum": paid}
    payment_properties = {
        "payment_id": {"type": "string", "description": "Ours; the order's receipt."},
        "order_id": {"type": "string", "description": "Razorpay's order id."},
        "razorpay_payment_id": nullable({"type": "string"}),
        "subject": {"type": "string"},
        "plan": {"type": "string"},
        "amount": _PAID_AMOUNT,
        "currency": {"type": "string"},
        "status": {"type": "string", "enum": [status.value for status in PaymentStatus]},
        "created_at": TIME,
        "updated_at": TIME,
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
            "required": list(_ORDER),
            "additionalProperties": False,
            "examples": [{"plan": plan} for plan in paid[:1]],
            "properties": {"plan": paid_plan},
        },
        "Order": {
            "type": "object",
            "required": ["order_id", "amount", "currency", "key_id", "payment_id", "plan"],
            "properties": {
                "order_id": {"type": "string", "description": "Checkout's `order_id`."},
                "amount": {**COUNT, "description": "Checkout's `amount`."},
                "currency": {"type": "string", "description": "Checkout's `currency`."},
                "key_id": {"type": "string", "description": "Checkout's `key`."},
                "payment_id": {"type": "string"},
                # Razorpay's receipt limit (its adapter checks our ids fit).
                "receipt": {"type": "string", "maxLength": 40},
                "plan": {"type": "string"},
                "name": {"type": "string"},
                "description": {"type": "string"},
                "notes": {"type": "object", "additionalProperties": {"type": "string"}},
                "status": {"const": PaymentStatus.CREATED.value},
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
                **USAGE_PROPERTIES,
                "payment": ref("Payment"),
            },
        },
        "WebhookResult": {
            "type": "object",
            "required": ["status", "event"],
            "properties": {
                "status": {"type": "string", "enum": [status.value for status in WebhookStatus]},
                "event": {"type": "string"},
                "order_id": nullable({"type": "string"}),
            },
        },
        "PaymentRefused": refusal(
            "payment refused",
            "`free_plan`, `lower_plan`, `no_term`, `bad_signature` or `malformed_event`.",
        ),
    }


def _refused(description: str) -> dict[str, Any]:
    return response(description, "PaymentRefused")


_GATEWAY_DOWN = response("Razorpay is unreachable, too slow, or refused the order.")

_CREATE_ORDER = {
    "operationId": "createOrder",
    "summary": "Create an order for a paid plan (upgrade or renewal)",
    "tags": ["payments"],
    "security": SECURED,
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
_VERIFY_PAYMENT = {
    "operationId": "verifyPayment",
    "summary": "Confirm a payment with Checkout's signature; applies the plan once",
    "tags": ["payments"],
    "security": SECURED,
    "requestBody": body(
        "VerifyRequest",
        "The three fields Checkout's handler gets.",
        {
            "checkout": example(
                "What Checkout's handler gets (for an order of yours; this one is not: 404)",
                {
                    "razorpay_order_id": "order_Q6kVbZ1xNw3Yt9",
                    "razorpay_payment_id": "pay_Q6kVcA2yOx4Zu0",
                    "razorpay_signature": "0f" * 32,
                },
            )
        },
    ),
    "responses": {
        "200": response("The usage with the paid plan applied.", "VerifyResponse"),
        **errors("401", *BODY_ERRORS, "503"),
        "400": _refused("The signature does not match; nothing changed."),
        "404": response("No such order belongs to the caller."),
    },
}
#: A Razorpay event (trimmed to the fields read), for an order that is not ours: ignored.
_CAPTURED = {
    "entity": "event",
    "account_id": "acc_Q6kVZx0vMv2Xs8",
    "event": "payment.captured",
    "contains": ["payment"],
    "payload": {
        "payment": {
            "entity": {
                "id": "pay_Q6kVcA2yOx4Zu0",
                "entity": "payment",
                "amount": 2900,
                "currency": "INR",
                "status": "captured",
                "order_id": "order_Q6kVbZ1xNw3Yt9",
            }
        }
    },
    "created_at": 1767225600,
}
_WEBHOOK = {
    "operationId": "receiveRazorpayWebhook",
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
            "schema": {"type": "string", "maxLength": MAX_GATEWAY_ID_LENGTH},
            "example": "evt_Q6kVdB3zPy5Av1",
        },
    ],
    "requestBody": {
        "required": True,
        "description": "Razorpay's event JSON, exactly as sent.",
        "content": {
            JSON: {
                "schema": {"type": "object"},
                "examples": {"captured": example("A payment captured", _CAPTURED)},
            }
        },
    },
    "responses": {
        "200": response("Recorded (or ignored: not an event we act on).", "WebhookResult"),
        **errors(*BODY_ERRORS, "503"),
        "400": _refused("Bad or missing signature, or not an event; nothing changed."),
    },
}
_LIST_PAYMENTS = {
    "operationId": "listPayments",
    "summary": "The caller's payments, newest first",
    "tags": ["payments"],
    "security": SECURED,
    "responses": {
        "200": response("The payments.", "Payments"),
        **errors("401", "422", "503"),
    },
}

RESOURCE = Resource(
    operations=[
        Operation("POST", "/api/payments/order", create_order, _CREATE_ORDER, name="order"),
        Operation("POST", "/api/payments/verify", verify, _VERIFY_PAYMENT, name="verify"),
        Operation("POST", "/api/payments/webhook", webhook, _WEBHOOK, name="webhook"),
        Operation("GET", "/api/payments", list_payments, _LIST_PAYMENTS, name="payments"),
    ],
    schemas=_schemas,
)
