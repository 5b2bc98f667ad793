"""Outbound events, for admins (docs/events.md): webhook endpoints
(``/api/admin/webhooks``), each endpoint's deliveries and a manual retry, and the pull
feed of the outbox (``/api/admin/events``).

The store keeps them (:class:`~tokenplans.ports.EventStore`); the composition root's
worker delivers. A new endpoint's URL must be http(s) and pass the target check the
composition root hands over (public addresses only unless private targets are allowed).
"""

from __future__ import annotations

import secrets
from base64 import b64encode
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tokenplans import MAX_PAGE_SIZE, EventType, InvalidRequestError, PlanCatalog
from tokenplans.ports import Delivery, Event, EventStore, WebhookEndpoint
from tokenplans_adapters.http.auth import require_admin
from tokenplans_adapters.http.bodies import Field, check_object, query_int, read_json
from tokenplans_adapters.http.errors import json_error
from tokenplans_adapters.http.offload import in_thread
from tokenplans_adapters.http.openapi import (
    COUNT,
    TIME,
    body,
    example,
    nullable,
    operation,
    ref,
    response,
)
from tokenplans_adapters.http.routing import Operation, Resource
from tokenplans_adapters.http.state import state_of

_MAX_URL = 2048
_MAX_DESCRIPTION = 500
_EVENT_TYPES = [kind.value for kind in EventType]
_BODY = {
    "url": Field(str),
    "events": Field(list, required=False),
    "description": Field(str, required=False),
}
_WEBHOOKS = "/api/admin/webhooks"


def _store(request: Request) -> EventStore:
    store = state_of(request).service.store
    if not isinstance(store, EventStore):
        raise InvalidRequestError("this server's store keeps no events")
    return store


def _utc(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as the API shows it: never its secret (only its creation answers it)."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": None if endpoint.events is None else list(endpoint.events),
        "description": endpoint.description,
        "created_at": _utc(endpoint.created_at),
        "enabled": endpoint.enabled,
        "disabled_at": _utc(endpoint.disabled_at),
        "failing_since": _utc(endpoint.failing_since),
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "subject": delivery.subject,
        "position": delivery.position,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "next_attempt_at": _utc(delivery.next_attempt_at),
        "last_attempt_at": _utc(delivery.last_attempt_at),
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "delivered_at": _utc(delivery.delivered_at),
    }


def event_json(event: Event) -> dict[str, Any]:
    return {"position": event.position, **event.payload()}


def _checked_events(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > len(_EVENT_TYPES):
        raise InvalidRequestError("events must be a non-empty list of event types")
    unknown = [v for v in value if not isinstance(v, str) or v not in _EVENT_TYPES]
    if unknown:
        raise InvalidRequestError(f"unknown event type(s): {unknown!r}")
    if len(set(value)) != len(value):
        raise InvalidRequestError("events must not repeat a type")
    return tuple(value)


async def create_webhook(request: Request) -> JSONResponse:
    require_admin(request)
    fields = check_object(await read_json(request), _BODY)
    url: str = fields["url"]
    description: str = fields.get("description") or ""
    if len(description) > _MAX_DESCRIPTION:
        raise InvalidRequestError(f"description must be at most {_MAX_DESCRIPTION} characters")
    if len(url) > _MAX_URL or not url.lower().startswith(("http://", "https://")):
        raise InvalidRequestError(
            f"url must be an http or https URL of at most {_MAX_URL} characters"
        )
    check = state_of(request).webhook_target
    if check is not None:
        try:
            await in_thread(check, url)  # resolves the host: not on the event loop
        except ValueError as refused:
            raise InvalidRequestError(f"url refused: {refused}") from refused
    endpoint = WebhookEndpoint(
        id="wh_" + secrets.token_hex(12),
        url=url,
        secret="whsec_" + b64encode(secrets.token_bytes(24)).decode("ascii"),
        created_at=datetime.now(UTC),
        events=_checked_events(fields.get("events")),
        description=description,
    )
    await in_thread(_store(request).add_endpoint, endpoint)
    return JSONResponse({**endpoint_json(endpoint), "secret": endpoint.secret}, status_code=201)


async def list_webhooks(request: Request) -> JSONResponse:
    require_admin(request)
    endpoints = await in_thread(_store(request).endpoints)
    return JSONResponse({"webhooks": [endpoint_json(e) for e in endpoints]})


def _webhook_id(request: Request) -> str:
    value: str = request.path_params["webhook_id"]
    return value


async def delete_webhook(request: Request) -> JSONResponse:
    require_admin(request)
    if not await in_thread(_store(request).delete_endpoint, _webhook_id(request)):
        return json_error(404, "webhook not found")
    return JSONResponse({"deleted": True})


async def webhook_deliveries(request: Request) -> JSONResponse:
    require_admin(request)
    store = _store(request)
    endpoint_id = _webhook_id(request)
    limit = query_int(request, "limit", 50)
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequestError(f"limit must be 1-{MAX_PAGE_SIZE}")
    before = query_int(request, "before", 0) or None
    if await in_thread(store.find_endpoint, endpoint_id) is None:
        return json_error(404, "webhook not found")
    found = await in_thread(lambda: store.deliveries(endpoint_id, before=before, limit=limit))
    more = len(found) == limit
    return JSONResponse(
        {
            "deliveries": [delivery_json(d) for d in found],
            "next_before": found[-1].position if more else None,
        }
    )


async def retry_delivery(request: Request) -> JSONResponse:
    require_admin(request)
    store = _store(request)
    event_id: str = request.path_params["event_id"]
    now = datetime.now(UTC)
    again = await in_thread(store.retry_delivery, _webhook_id(request), event_id, now)
    if again is None:
        return json_error(404, "delivery not found")
    return JSONResponse(delivery_json(again))


async def list_events(request: Request) -> JSONResponse:
    principal = require_admin(request)
    after = query_int(request, "after", 0)
    limit = query_int(request, "limit", 100)
    page = await in_thread(state_of(request).service.events, principal, after=after, limit=limit)
    return JSONResponse(
        {"events": [event_json(e) for e in page.events], "next_after": page.next_after}
    )


# -- OpenAPI ------------------------------------------------------------------------

_WEBHOOK_ID = {
    "name": "webhook_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    "example": "wh_5f0e7c2a93b14d6ea8f41c2b",
}
_EVENT_ID = {
    "name": "event_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    "example": "evt_mfrggzdfmztwq2lknnwg23tpoa",
}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
}
_NOT_FOUND = {"404": response("No such webhook (or delivery).")}


def _schemas(_catalog: PlanCatalog) -> dict[str, Any]:
    event_types = {"type": "string", "enum": _EVENT_TYPES}
    endpoint: dict[str, Any] = {
        "type": "object",
        "required": ["id", "url", "events", "description", "created_at", "enabled"],
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string", "format": "uri"},
            "events": nullable({"type": "array", "items": event_types}),
            "description": {"type": "string"},
            "created_at": TIME,
            "enabled": {"type": "boolean"},
            "disabled_at": nullable(TIME),
            "failing_since": nullable(TIME),
        },
    }
    return {
        "WebhookRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "minLength": 1, "maxLength": _MAX_URL},
                "events": nullable(
                    {"type": "array", "items": event_types, "minItems": 1, "uniqueItems": True}
                ),
                "description": nullable({"type": "string", "maxLength": _MAX_DESCRIPTION}),
            },
        },
        "Webhook": endpoint,
        "NewWebhook": {
            **endpoint,
            "required": [*endpoint["required"], "secret"],
            "properties": {
                **endpoint["properties"],
                "secret": {"type": "string", "pattern": "^whsec_", "description": "Shown once."},
            },
        },
        "WebhookList": {
            "type": "object",
            "required": ["webhooks"],
            "properties": {"webhooks": {"type": "array", "items": ref("Webhook")}},
        },
        "Delivery": {
            "type": "object",
            "required": ["event_id", "event_type", "subject", "position", "status", "attempts"],
            "properties": {
                "event_id": {"type": "string"},
                "event_type": event_types,
                "subject": {"type": "string"},
                "position": COUNT,
                "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                "attempts": COUNT,
                "next_attempt_at": TIME,
                "last_attempt_at": nullable(TIME),
                "last_status_code": nullable({"type": "integer"}),
                "last_error": nullable({"type": "string"}),
                "delivered_at": nullable(TIME),
            },
        },
        "DeliveryPage": {
            "type": "object",
            "required": ["deliveries", "next_before"],
            "properties": {
                "deliveries": {"type": "array", "items": ref("Delivery")},
                "next_before": nullable(COUNT),
            },
        },
        "Event": {
            "type": "object",
            "required": ["position", "id", "type", "created_at", "subject", "data"],
            "properties": {
                "position": COUNT,
                "id": {"type": "string"},
                "type": event_types,
                "created_at": TIME,
                "subject": {"type": "string"},
                "data": {"type": "object"},
            },
        },
        "EventPage": {
            "type": "object",
            "required": ["events", "next_after"],
            "properties": {
                "events": {"type": "array", "items": ref("Event")},
                "next_after": COUNT,
            },
        },
        "Deleted": {
            "type": "object",
            "required": ["deleted"],
            "properties": {"deleted": {"const": True}},
        },
    }


RESOURCE = Resource(
    operations=[
        Operation(
            "POST",
            _WEBHOOKS,
            create_webhook,
            operation(
                "adminCreateWebhook",
                "Add a webhook endpoint; its signing secret is answered once (admin)",
                response("Not used: a new endpoint is a 201.", "NewWebhook"),
                tag="events",
                request=body(
                    "WebhookRequest",
                    "Where to send events, which types (all when omitted), a note.",
                    {
                        "alerts": example(
                            "Usage alerts only",
                            {
                                "url": "https://example.com/hooks/tokenplans",
                                "events": ["usage.threshold_crossed"],
                            },
                        )
                    },
                ),
                failures=["403", "503"],
                answers={"201": response("The endpoint and its `whsec_` secret.", "NewWebhook")},
            ),
        ),
        Operation(
            "GET",
            _WEBHOOKS,
            list_webhooks,
            operation(
                "adminListWebhooks",
                "Every webhook endpoint (admin)",
                response("The endpoints, oldest first, without secrets.", "WebhookList"),
                tag="events",
                failures=["403", "503"],
            ),
        ),
        Operation(
            "DELETE",
            f"{_WEBHOOKS}/{{webhook_id}}",
            delete_webhook,
            operation(
                "adminDeleteWebhook",
                "Delete a webhook endpoint and its deliveries (admin)",
                response("Deleted.", "Deleted"),
                tag="events",
                parameters=[_WEBHOOK_ID],
                failures=["403", "503"],
                answers=_NOT_FOUND,
            ),
        ),
        Operation(
            "GET",
            f"{_WEBHOOKS}/{{webhook_id}}/deliveries",
            webhook_deliveries,
            operation(
                "adminListDeliveries",
                "An endpoint's deliveries, newest event first (admin)",
                response("One page of deliveries.", "DeliveryPage"),
                tag="events",
                parameters=[
                    _WEBHOOK_ID,
                    {
                        "name": "before",
                        "in": "query",
                        "required": False,
                        "description": "`next_before` of the previous page.",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                    _LIMIT,
                ],
                failures=["403", "422", "503"],
                answers=_NOT_FOUND,
            ),
        ),
        Operation(
            "POST",
            f"{_WEBHOOKS}/{{webhook_id}}/deliveries/{{event_id}}/retry",
            retry_delivery,
            operation(
                "adminRetryDelivery",
                "Send a delivery again now, re-enabling its endpoint (admin)",
                response("The delivery, pending again.", "Delivery"),
                tag="events",
                parameters=[_WEBHOOK_ID, _EVENT_ID],
                failures=["403", "503"],
                answers=_NOT_FOUND,
            ),
        ),
        Operation(
            "GET",
            "/api/admin/events",
            list_events,
            operation(
                "adminListEvents",
                "The events, oldest first: a pull feed of what webhooks deliver (admin)",
                response("One page of events.", "EventPage"),
                tag="events",
                parameters=[
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "`next_after` of the previous page (0: the start).",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                    _LIMIT,
                ],
                failures=["403", "422", "503"],
            ),
        ),
    ],
    schemas=_schemas,
)

__all__ = ["RESOURCE", "delivery_json", "endpoint_json", "event_json"]
