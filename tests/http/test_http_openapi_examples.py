"""What the OpenAPI document shows a client is true: every example it documents (request
bodies and parameters, which Swagger UI prefills) is one the server accepts, and every
operation has a stable, unique ``operationId`` (a generated client's method name).

Each example is sent, through the ASGI app, to its operation on a fresh service (so a
fresh subject), as Alice on her own routes and as an admin on the admin ones; a route of
one hold first gets the hold its prefilled ``{hold_id}`` names. It runs under the unit
prices and under the genai-prices table, so every model an example names is one a real
price table knows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import attrs
import pytest
from http_support import ALICE, GATEWAY_SECRET, ROOT, build_app, build_full_app
from starlette.testclient import TestClient

from tokenplans import EventType, Pricer, Principal, TokenService
from tokenplans.ports import Commit, Event, EventStore, WebhookEndpoint
from tokenplans_adapters.genai_prices import GenaiPricesPricer

_OPERATION_ID = re.compile(r"^[a-z][A-Za-z0-9]*$")
#: What an example is answered when a 2xx cannot be: a Checkout proof names an order only
#: Razorpay Checkout knows, so the documented one is a well-formed proof of no order (on
#: today's path and on the provider's own).
_NOT_2XX = {"verifyPayment": 404, "verifyRazorpayPayment": 404}
_SIGNATURE = "X-Razorpay-Signature"


def _document() -> dict[str, Any]:
    app, _service = build_full_app()
    document: dict[str, Any] = TestClient(app).get("/openapi.json").json()
    return document


DOCUMENT = _document()


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def _resolved(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    reference = schema.get("$ref")
    if reference is None:
        return schema
    return _resolved(DOCUMENT["components"]["schemas"][reference.rpartition("/")[2]])


def _body_examples(operation: Mapping[str, Any]) -> dict[str, Any]:
    """The request body's examples by name: the media type's, else its schema's."""
    media = operation["requestBody"]["content"]["application/json"]
    if "examples" in media:
        return {name: example["value"] for name, example in media["examples"].items()}
    if "example" in media:
        return {"example": media["example"]}
    found = _resolved(media["schema"]).get("examples", [])
    return {f"schema-{index}": value for index, value in enumerate(found)}


def _cases() -> Iterator[Any]:
    for method, path, operation in _operations():
        if "requestBody" not in operation:
            yield pytest.param(method, path, None, id=operation["operationId"])
            continue
        for name, value in _body_examples(operation).items():
            yield pytest.param(method, path, value, id=f"{operation['operationId']}-{name}")


def _unit() -> Pricer | None:
    return None


def _table() -> Pricer:
    return GenaiPricesPricer(100_000)


@pytest.mark.parametrize("pricer", [_unit, _table], ids=["unit-prices", "genai-prices"])
@pytest.mark.parametrize(("method", "path", "body"), list(_cases()))
def test_every_documented_example_is_accepted(
    pricer: Callable[[], Pricer | None], method: str, path: str, body: object
) -> None:
    operation = DOCUMENT["paths"][path][method]
    app, service = build_full_app(pricer())
    params: dict[str, dict[str, str]] = {"path": {}, "query": {}, "header": {}}
    for parameter in operation.get("parameters", []):
        if "example" in parameter:
            params[parameter["in"]][parameter["name"]] = str(parameter["example"])
    admin = path.startswith("/api/admin/")
    if "hold_id" in params["path"]:
        owner = params["path"]["subject"] if admin else "alice"
        service.reserve(Principal(owner), 500, hold_id=params["path"]["hold_id"])
    if "lot_id" in params["path"]:
        admin_principal = Principal("root", frozenset({"tokenplans:admin"}))
        service.grant(
            admin_principal,
            500,
            subject=params["path"]["subject"],
            lot_id=params["path"]["lot_id"],
            expires="never",
        )
    if "webhook_id" in params["path"]:
        _webhook_for(service, params["path"])
    url = path
    for name, value in params["path"].items():
        url = url.replace(f"{{{name}}}", quote(value, safe=""))
    content = None if body is None else json.dumps(body).encode()
    headers = dict(params["header"])
    if "security" in operation:
        headers.update(ROOT if admin else ALICE)
    if any(p["name"] == _SIGNATURE for p in operation.get("parameters", [])):
        # Razorpay signs each delivery: the test signs the example as it would.
        digest = hmac.new(GATEWAY_SECRET.encode(), content or b"", hashlib.sha256)
        headers[_SIGNATURE] = digest.hexdigest()
    if content is not None:
        headers["Content-Type"] = "application/json"

    response = TestClient(app).request(
        method, url, params=params["query"], headers=headers, content=content
    )

    expected = _NOT_2XX.get(operation["operationId"])
    if expected is None:
        assert 200 <= response.status_code < 300, response.text
    else:
        assert response.status_code == expected, response.text


def _webhook_for(service: TokenService, path: Mapping[str, str]) -> None:
    """The endpoint a prefilled ``{webhook_id}`` names, with a delivery of the event a
    prefilled ``{event_id}`` names."""
    store = service.store
    assert isinstance(store, EventStore)
    now = datetime.now(UTC)
    store.add_endpoint(
        WebhookEndpoint(path["webhook_id"], "https://example.com/hook", "whsec_" + "A" * 32, now)
    )
    if "event_id" in path:
        service.consume(Principal("alice"), 1)
        account = service.store.load("alice")
        assert account is not None
        event = Event(path["event_id"], EventType.PERIOD_RESET, now, "alice", {})
        moved = attrs.evolve(account, version=account.version + 1)
        service.store.commit(Commit(moved, account.version, (), (event,)))
        store.claim_deliveries(now, limit=10, lease_seconds=1)


def test_every_request_body_and_path_parameter_has_an_example() -> None:
    for method, path, operation in _operations():
        if "requestBody" in operation:
            assert _body_examples(operation), (method, path)
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "example" in parameter, (method, path, parameter["name"])


def test_a_model_in_an_example_is_a_real_one() -> None:
    """Swagger UI would otherwise make one up from the name's pattern."""
    model = DOCUMENT["components"]["schemas"]["ModelUsage"]["properties"]["model"]

    assert model["examples"] == ["gpt-4o"]


def test_the_consume_example_sends_one_form_per_example() -> None:
    """The example Swagger UI prefilled once sent both ``amount`` and ``usage``: a 422."""
    operation = DOCUMENT["paths"]["/api/tokens/consume"]["post"]

    for value in _body_examples(operation).values():
        assert ("amount" in value) != ("usage" in value), value


def test_every_operation_has_a_unique_camel_case_operation_id() -> None:
    ids = [operation.get("operationId") for _method, _path, operation in _operations()]

    assert all(isinstance(name, str) and _OPERATION_ID.match(name) for name in ids), ids
    assert len(set(ids)) == len(ids)


def test_operation_ids_are_stable() -> None:
    """Generated clients name their methods after these: renaming one breaks them."""
    ids = {
        f"{method.upper()} {path}": operation["operationId"]
        for method, path, operation in _operations()
    }

    assert ids["GET /api/tokens/usage"] == "getUsage"
    assert ids["POST /api/tokens/consume"] == "consumeTokens"
    assert ids["POST /api/tokens/holds"] == "reserveHold"
    assert ids["POST /api/tokens/holds/{hold_id}/settle"] == "settleHold"
    assert ids["POST /api/admin/accounts/{subject}/grant"] == "adminGrantTokens"
    assert ids["POST /api/payments/order"] == "createOrder"


def test_a_duplicate_operation_id_is_refused_when_the_app_is_built() -> None:
    spec = {"operationId": "getUsage", "responses": {"200": {"description": "ok"}}}

    with pytest.raises(ValueError, match="operationId 'getUsage' of GET /api/mine"):
        build_app(extra_openapi_paths={"/api/mine": {"get": spec}})
