"""The payments resource, in the app when a PaymentService is wired (docs: Payments).

Every payment provider the service holds (its gateways, by name) owns its routes:

- ``POST /api/payments/{provider}/order {plan}``: an order for a paid plan, with what the
  provider's checkout needs to take the payment (order id, amount, currency, and the
  gateway's own public fields);
- ``POST /api/payments/{provider}/verify``: the proof the provider's checkout hands the
  browser after a successful payment (its fields are the gateway's); answers the usage
  with the plan applied. Only for a provider whose description names proof fields;
- ``POST /api/payments/{provider}/webhook``: the provider's server-to-server events. No
  bearer token: the signature over the raw body is the credential, and the body is read
  as bytes and never re-serialised before the gateway checks it. Any signed delivery is
  answered 200 once it is recorded (unknown events too, so the provider stops retrying);
  a bad signature is a 400 and changes nothing;
- ``POST /api/payments/order``, ``/verify`` and ``/webhook``: the same, for the service's
  default provider (the paths the original frontend calls);
- ``GET /api/payments``: the caller's payments, newest first.

A provider that is not served has no routes: its paths are 404s like any unknown one.
Nothing here names a provider: field names, headers, limits and examples come from each
gateway's :class:`~tokenplans.ports.GatewayDescription`. Like every endpoint, these hold
no rule: the core's :class:`~tokenplans.PaymentService` decides, in the thread pool, and
core errors map to responses in :mod:`.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
from tokenplans.ports import GatewayDescription
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
from tokenplans_adapters.http.routing import Endpoint, Operation, Resource
from tokenplans_adapters.http.snapshot import USAGE_PROPERTIES, iso, usage_json
from tokenplans_adapters.http.state import state_of

_ORDER = {"plan": Field(str)}


def provider_payment_field(provider: str) -> str:
    """The name a payment shows its provider's payment id under: ``{provider}_payment_id``."""
    return f"{provider}_payment_id"


def payment_json(payment: Payment) -> dict[str, Any]:
    """One payment as the API shows it: ours and the provider's ids, the plan and the money."""
    return {
        "payment_id": payment.id,
        "order_id": payment.order_id,
        provider_payment_field(payment.provider): payment.gateway_payment_id,
        "subject": payment.subject,
        "plan": payment.plan_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status.value,
        "created_at": iso(payment.created_at),
        "updated_at": iso(payment.updated_at),
    }


def checkout_json(checkout: Checkout) -> dict[str, Any]:
    """The order, shaped for a browser checkout's options (``amount``, ``currency``,
    ``order_id``, ``name``, ``description``, ``notes``), with the gateway's public fields."""
    payment = checkout.payment
    return {
        "order_id": checkout.order_id,
        "amount": checkout.amount,
        "currency": checkout.currency,
        **checkout.public,  # the gateway's public fields (its description's ``checkout``)
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


def _create_order(provider: str) -> Endpoint:
    async def create_order(request: Request) -> JSONResponse:
        principal = principal_of(request)
        fields = await read_object(request, _ORDER)
        payments = _payments(request)

        def call() -> Checkout:
            return payments.create_order(principal, fields["plan"], provider=provider)

        return JSONResponse(checkout_json(await in_thread(call)))

    return create_order


def _verify(provider: str, proof: Mapping[str, Field]) -> Endpoint:
    async def verify(request: Request) -> JSONResponse:
        principal = principal_of(request)
        fields = await read_object(request, proof)
        payments = _payments(request)

        def call() -> PaymentOutcome:
            return payments.confirm(principal, fields, provider=provider)

        return JSONResponse(outcome_json(await in_thread(call)))

    return verify


def _webhook(provider: str) -> Endpoint:
    async def webhook(request: Request) -> JSONResponse:
        # The signature covers the raw bytes, so the gateway parses them itself; the body
        # parser's rules on media type, nesting and numbers still apply first.
        require_json_content_type(request)
        raw = await request.body()
        check_raw_json_limits(raw)
        payments = _payments(request)

        def call() -> WebhookOutcome:
            return payments.handle_webhook(body=raw, headers=request.headers, provider=provider)

        return JSONResponse(webhook_json(await in_thread(call)))

    return webhook


async def list_payments(request: Request) -> JSONResponse:
    principal = principal_of(request)
    found = await in_thread(_payments(request).payments, principal)
    return JSONResponse({"payments": [{**payment_json(p), "provider": p.provider} for p in found]})


# -- OpenAPI ------------------------------------------------------------------------

_PAID_AMOUNT = {**COUNT, "description": "Minor units (paise)."}


def _word(provider: str) -> str:
    """The provider's name as a word of an operation id or schema name (``Name``)."""
    return provider.capitalize()


def _schemas(
    gateways: Mapping[str, GatewayDescription],
) -> Callable[[PlanCatalog], dict[str, Any]]:
    """The component schemas of the payment operations: the neutral ones, then each
    provider's order and proof. The paid plans come from the catalog served."""

    def schemas(catalog: PlanCatalog) -> dict[str, Any]:
        paid = [plan.id for plan in catalog if not plan.is_free]
        id_fields = [provider_payment_field(name) for name in gateways]
        payment_properties = {
            "payment_id": {"type": "string", "description": "Ours; the order's receipt."},
            "order_id": {"type": "string", "description": "The provider's order id."},
            **{
                field: nullable(
                    {"type": "string", "description": "The provider's payment id, once paid."}
                )
                for field in id_fields
            },
            "subject": {"type": "string"},
            "plan": {"type": "string"},
            "amount": _PAID_AMOUNT,
            "currency": {"type": "string"},
            "status": {"type": "string", "enum": [status.value for status in PaymentStatus]},
            "created_at": TIME,
            "updated_at": TIME,
        }
        # A payment shows the id field of its own provider only.
        required = [
            name for name in payment_properties if len(id_fields) == 1 or name not in id_fields
        ]
        found: dict[str, Any] = {
            "Payment": {"type": "object", "required": required, "properties": payment_properties},
            "ListedPayment": {
                "allOf": [
                    ref("Payment"),
                    {
                        "type": "object",
                        "required": ["provider"],
                        "properties": {"provider": {"type": "string", "enum": list(gateways)}},
                    },
                ]
            },
            "Payments": {
                "type": "object",
                "required": ["payments"],
                "properties": {"payments": {"type": "array", "items": ref("ListedPayment")}},
            },
            "OrderRequest": {
                "type": "object",
                "required": list(_ORDER),
                "additionalProperties": False,
                "examples": [{"plan": plan} for plan in paid[:1]],
                "properties": {"plan": {"type": "string", "enum": paid}},
            },
            "Order": {
                "type": "object",
                "required": ["order_id", "amount", "currency", "payment_id", "plan"],
                "properties": {
                    "order_id": {"type": "string", "description": "Checkout's `order_id`."},
                    "amount": {**COUNT, "description": "Checkout's `amount`."},
                    "currency": {"type": "string", "description": "Checkout's `currency`."},
                    "payment_id": {"type": "string"},
                    "receipt": {"type": "string", "description": "Our payment id again."},
                    "plan": {"type": "string"},
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "notes": {"type": "object", "additionalProperties": {"type": "string"}},
                    "status": {"const": PaymentStatus.CREATED.value},
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
                    "status": {
                        "type": "string",
                        "enum": [status.value for status in WebhookStatus],
                    },
                    "event": {"type": "string"},
                    "order_id": nullable({"type": "string"}),
                },
            },
            "PaymentRefused": refusal(
                "payment refused",
                "`free_plan`, `lower_plan`, `no_term`, `bad_signature` or `malformed_event`.",
            ),
        }
        for name, description in gateways.items():
            found.update(_provider_schemas(name, description))
        return found

    return schemas


def _provider_schemas(name: str, description: GatewayDescription) -> dict[str, Any]:
    """A provider's order answer (the neutral order plus its checkout fields and receipt
    limit) and the proof its verify takes."""
    receipt: dict[str, Any] = {"type": "string"}
    if description.max_receipt_length is not None:
        receipt["maxLength"] = description.max_receipt_length
    found: dict[str, Any] = {
        f"{_word(name)}Order": {
            "allOf": [
                ref("Order"),
                {
                    "type": "object",
                    "required": list(description.checkout),
                    "properties": {
                        **{field: dict(schema) for field, schema in description.checkout.items()},
                        # The provider's receipt limit (its adapter checks our ids fit).
                        "receipt": receipt,
                    },
                },
            ]
        }
    }
    if description.proof:
        found[f"{_word(name)}VerifyRequest"] = {
            "type": "object",
            "required": list(description.proof),
            "additionalProperties": False,
            "properties": {field: dict(schema) for field, schema in description.proof.items()},
        }
    return found


def _refused(text: str) -> dict[str, Any]:
    return response(text, "PaymentRefused")


def _create_order_spec(operation_id: str, title: str, order_schema: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": f"Create an order for a paid plan at {title} (upgrade or renewal)",
        "tags": ["payments"],
        "security": SECURED,
        "requestBody": body("OrderRequest", "The plan to buy."),
        "responses": {
            "200": response(f"What {title} Checkout needs to take the payment.", order_schema),
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
            "502": response(f"{title} is unreachable, too slow, or refused the order."),
        },
    }


def _verify_spec(
    operation_id: str, title: str, name: str, description: GatewayDescription
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": f"Confirm a payment with {title} Checkout's proof; applies the plan once",
        "tags": ["payments"],
        "security": SECURED,
        "requestBody": body(
            f"{_word(name)}VerifyRequest",
            f"The fields {title} Checkout's handler gets.",
            {
                "checkout": example(
                    "What Checkout's handler gets (for an order of yours; this one is not: 404)",
                    dict(description.proof_example),
                )
            },
        ),
        "responses": {
            "200": response("The usage with the paid plan applied.", "VerifyResponse"),
            **errors("401", *BODY_ERRORS, "503"),
            "400": _refused("The signature does not match; nothing changed."),
            "404": response("No such order of this provider belongs to the caller."),
        },
    }


def _webhook_spec(operation_id: str, title: str, description: GatewayDescription) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": f"{title} webhook (signed with the webhook secret, no bearer token)",
        "tags": ["payments"],
        "parameters": [dict(header) for header in description.webhook_headers],
        "requestBody": {
            "required": True,
            "description": f"{title}'s event JSON, exactly as sent.",
            "content": {
                JSON: {
                    "schema": {"type": "object"},
                    "examples": {
                        "event": example(
                            "An event about an order that is not ours (ignored)",
                            dict(description.webhook_example),
                        )
                    },
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
    "summary": "The caller's payments (at every provider), newest first",
    "tags": ["payments"],
    "security": SECURED,
    "responses": {
        "200": response("The payments.", "Payments"),
        **errors("401", "422", "503"),
    },
}


def _provider_operations(
    name: str, description: GatewayDescription, *, prefix: str, ids: tuple[str, str, str]
) -> list[Operation]:
    """A provider's order, verify (when it takes a proof) and webhook operations under
    ``prefix``, with the given operation ids."""
    title, word = description.title, _word(name)
    proof = {field: Field(str) for field in description.proof}
    route = "" if prefix == "/api/payments" else f"{name}-"
    operations = [
        Operation(
            "POST",
            f"{prefix}/order",
            _create_order(name),
            _create_order_spec(ids[0], title, f"{word}Order"),
            name=f"{route}order",
        )
    ]
    if proof:
        operations.append(
            Operation(
                "POST",
                f"{prefix}/verify",
                _verify(name, proof),
                _verify_spec(ids[1], title, name, description),
                name=f"{route}verify",
            )
        )
    operations.append(
        Operation(
            "POST",
            f"{prefix}/webhook",
            _webhook(name),
            _webhook_spec(ids[2], title, description),
            name=f"{route}webhook",
        )
    )
    return operations


def resource(payments: PaymentService) -> Resource:
    """The payment routes of ``payments``' providers: each under ``/api/payments/NAME``,
    the default one also under ``/api/payments`` (today's paths), and the list."""
    gateways = {name: gateway.description for name, gateway in payments.gateways.items()}
    default = payments.default_provider
    operations = _provider_operations(
        default,
        gateways[default],
        prefix="/api/payments",
        ids=("createOrder", "verifyPayment", "receiveWebhook"),
    )
    for name, description in gateways.items():
        word = _word(name)
        operations += _provider_operations(
            name,
            description,
            prefix=f"/api/payments/{name}",
            ids=(f"create{word}Order", f"verify{word}Payment", f"receive{word}Webhook"),
        )
    operations.append(
        Operation("GET", "/api/payments", list_payments, _LIST_PAYMENTS, name="payments")
    )
    return Resource(operations=operations, schemas=_schemas(gateways))
