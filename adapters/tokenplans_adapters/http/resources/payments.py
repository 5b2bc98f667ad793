"""The payments resource, in the app when a PaymentService is wired (docs: Payments).

Every payment provider the service holds (its gateways, by name) owns its routes:

- ``POST /api/payments/{provider}/order {plan} | {pack}``: an order for a paid plan or
  a top-up pack (exactly one), with what the provider's checkout needs to take the
  payment (order id, amount, currency, and the gateway's own public fields);
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

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tokenplans import (
    Checkout,
    Payment,
    PaymentOutcome,
    PaymentService,
    WebhookOutcome,
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
from tokenplans_adapters.http.routing import Endpoint, Operation, Resource
from tokenplans_adapters.http.snapshot import iso, usage_json
from tokenplans_adapters.http.state import state_of

from .payment_docs import (
    LIST_PAYMENTS,
    ORDER,
    create_order_spec,
    payment_schemas,
    provider_payment_field,
    provider_word,
    verify_spec,
    webhook_spec,
)


def payment_json(payment: Payment) -> dict[str, Any]:
    """One payment as the API shows it: ours and the provider's ids, the plan bought, or
    for a pack's payment ``"plan": null`` and the pack, and the money. A plan's payment
    reads exactly as before packs existed."""
    bought: dict[str, str | None] = (
        {"plan": None, "pack": payment.pack_id} if payment.is_pack else {"plan": payment.plan_id}
    )
    return {
        "payment_id": payment.id,
        "order_id": payment.order_id,
        provider_payment_field(payment.provider): payment.gateway_payment_id,
        "subject": payment.subject,
        **bought,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status.value,
        "created_at": iso(payment.created_at),
        "updated_at": iso(payment.updated_at),
    }


def checkout_json(checkout: Checkout) -> dict[str, Any]:
    """The order, shaped for a browser checkout's options (``amount``, ``currency``,
    ``order_id``, ``name``, ``description``, ``notes``), with the gateway's public fields.
    A pack's order names its ``pack`` where a plan's names its ``plan``."""
    payment = checkout.payment
    bought = {"pack": payment.pack_id} if payment.pack_id is not None else {"plan": payment.plan_id}
    return {
        "order_id": checkout.order_id,
        "amount": checkout.amount,
        "currency": checkout.currency,
        **checkout.public,  # the gateway's public fields (its description's ``checkout``)
        "payment_id": payment.id,
        "receipt": payment.id,
        **bought,
        "name": checkout.plan_name,
        "description": f"{checkout.plan_name} {'pack' if payment.is_pack else 'plan'}",
        "notes": {"subject": payment.subject, **bought},
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
        fields = await read_object(request, ORDER)
        payments = _payments(request)

        def call() -> Checkout:
            return payments.create_order(
                principal, fields.get("plan"), pack=fields.get("pack"), provider=provider
            )

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


def _provider_operations(
    name: str, description: GatewayDescription, *, prefix: str, ids: tuple[str, str, str]
) -> list[Operation]:
    """A provider's order, verify (when it takes a proof) and webhook operations under
    ``prefix``, with the given operation ids."""
    title, word = description.title, provider_word(name)
    proof = {field: Field(str) for field in description.proof}
    route = "" if prefix == "/api/payments" else f"{name}-"
    operations = [
        Operation(
            "POST",
            f"{prefix}/order",
            _create_order(name),
            create_order_spec(ids[0], title, f"{word}Order"),
            name=f"{route}order",
        )
    ]
    if proof:
        operations.append(
            Operation(
                "POST",
                f"{prefix}/verify",
                _verify(name, proof),
                verify_spec(ids[1], title, name, description),
                name=f"{route}verify",
            )
        )
    operations.append(
        Operation(
            "POST",
            f"{prefix}/webhook",
            _webhook(name),
            webhook_spec(ids[2], title, description),
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
        word = provider_word(name)
        operations += _provider_operations(
            name,
            description,
            prefix=f"/api/payments/{name}",
            ids=(f"create{word}Order", f"verify{word}Payment", f"receive{word}Webhook"),
        )
    operations.append(
        Operation("GET", "/api/payments", list_payments, LIST_PAYMENTS, name="payments")
    )
    return Resource(operations=operations, schemas=payment_schemas(gateways))
