"""The payments resource's OpenAPI document: its schemas and operations, written from
each gateway's :class:`~tokenplans.ports.GatewayDescription` (no provider is named here),
kept apart from the handlers in :mod:`.payments`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tokenplans import (
    PaymentStatus,
    PlanCatalog,
    WebhookStatus,
)
from tokenplans.ports import GatewayDescription
from tokenplans_adapters.http.bodies import Field
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
from tokenplans_adapters.http.snapshot import USAGE_PROPERTIES

#: What an order request reads: the plan or the pack to buy (exactly one: the service
#: refuses none or both, 422).
ORDER = {"plan": Field(str, required=False), "pack": Field(str, required=False)}


def provider_payment_field(provider: str) -> str:
    """The name a payment shows its provider's payment id under: ``{provider}_payment_id``."""
    return f"{provider}_payment_id"


_PAID_AMOUNT = {**COUNT, "description": "Minor units (paise)."}


def provider_word(provider: str) -> str:
    """The provider's name as a word of an operation id or schema name (``Name``)."""
    return provider.capitalize()


def payment_schemas(
    gateways: Mapping[str, GatewayDescription],
) -> Callable[[PlanCatalog], dict[str, Any]]:
    """The component schemas of the payment operations: the neutral ones, then each
    provider's order and proof. The paid plans come from the catalog served."""

    def schemas(catalog: PlanCatalog) -> dict[str, Any]:
        paid = [plan.id for plan in catalog if not plan.is_free]
        packs = [pack.id for pack in catalog.packs]
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
            "plan": nullable({"type": "string", "description": "The plan bought; null: a pack."}),
            "pack": {"type": "string", "description": "The pack bought (a pack's payment)."},
            "amount": _PAID_AMOUNT,
            "currency": {"type": "string"},
            "status": {"type": "string", "enum": [status.value for status in PaymentStatus]},
            "created_at": TIME,
            "updated_at": TIME,
        }
        # A payment shows the id field of its own provider only.
        required = [
            name
            for name in payment_properties
            if (len(id_fields) == 1 or name not in id_fields) and name != "pack"
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
                "description": (
                    "Exactly one of `plan` and `pack` (422 otherwise; `null` reads as absent)."
                ),
                "additionalProperties": False,
                "examples": [
                    *({"plan": plan} for plan in paid[:1]),
                    *({"pack": pack} for pack in packs[:1]),
                ],
                "properties": {
                    "plan": nullable({"type": "string", "enum": paid}),
                    "pack": nullable({"type": "string", **({"enum": packs} if packs else {})}),
                },
            },
            "Order": {
                "type": "object",
                "description": "A plan's order names its `plan`; a pack's its `pack`.",
                "required": ["order_id", "amount", "currency", "payment_id"],
                "properties": {
                    "order_id": {"type": "string", "description": "Checkout's `order_id`."},
                    "amount": {**COUNT, "description": "Checkout's `amount`."},
                    "currency": {"type": "string", "description": "Checkout's `currency`."},
                    "payment_id": {"type": "string"},
                    "receipt": {"type": "string", "description": "Our payment id again."},
                    "plan": {"type": "string"},
                    "pack": {"type": "string"},
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
        f"{provider_word(name)}Order": {
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
        found[f"{provider_word(name)}VerifyRequest"] = {
            "type": "object",
            "required": list(description.proof),
            "additionalProperties": False,
            "properties": {field: dict(schema) for field, schema in description.proof.items()},
        }
    return found


def _refused(text: str) -> dict[str, Any]:
    return response(text, "PaymentRefused")


def create_order_spec(operation_id: str, title: str, order_schema: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": (
            f"Create an order for a paid plan (upgrade or renewal) or a top-up pack at {title}"
        ),
        "tags": ["payments"],
        "security": SECURED,
        "requestBody": body("OrderRequest", "The plan or the pack to buy."),
        "responses": {
            "200": response(f"What {title} Checkout needs to take the payment.", order_schema),
            **errors("401", *BODY_ERRORS, "503"),
            "400": {
                "description": (
                    "An unknown plan (`invalid plan`) or pack (`invalid pack`), or a plan "
                    "that cannot be bought: free, or below the current plan "
                    "(`payment refused`)."
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


def verify_spec(
    operation_id: str, title: str, name: str, description: GatewayDescription
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": f"Confirm a payment with {title} Checkout's proof; applies the plan once",
        "tags": ["payments"],
        "security": SECURED,
        "requestBody": body(
            f"{provider_word(name)}VerifyRequest",
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


def webhook_spec(operation_id: str, title: str, description: GatewayDescription) -> dict[str, Any]:
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


LIST_PAYMENTS = {
    "operationId": "listPayments",
    "summary": "The caller's payments (at every provider), newest first",
    "tags": ["payments"],
    "security": SECURED,
    "responses": {
        "200": response("The payments.", "Payments"),
        **errors("401", "422", "503"),
    },
}
