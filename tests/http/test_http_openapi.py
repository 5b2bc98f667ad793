"""The OpenAPI document is valid 3.1, covers every route, and the app keeps its word.

Schemathesis generates requests from the document (valid and invalid ones) and checks
every response against it: no 5xx, every status documented, every body matching its
schema.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from http_support import ALICE, ROOT, build_app
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schema_checks import call_and_validate_as
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient


def _document() -> dict[str, Any]:
    document: dict[str, Any] = TestClient(build_app()).get("/openapi.json").json()
    return document


def test_the_document_is_valid_openapi_3_1() -> None:
    document = _document()

    validate(document)
    assert document["openapi"] == "3.1.0"


def test_the_document_describes_every_route_and_method() -> None:
    app = build_app()
    served = {
        (method.lower(), route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or ()) - {"HEAD"}
    }
    documented = {(method, path) for path, item in _document()["paths"].items() for method in item}

    assert served == documented
    assert {route.path for route in app.routes if isinstance(route, Mount)} == {"/docs/assets"}


def test_every_operation_documents_its_errors() -> None:
    for path, item in _document()["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"200", "404", "405", "500"} <= codes, (method, path)
            if "security" in operation:
                assert "401" in codes, (method, path)
            if "requestBody" in operation:
                assert {"413", "422"} <= codes, (method, path)


def test_extra_routes_and_their_documentation_are_served() -> None:
    async def ping(_request: object) -> JSONResponse:
        return JSONResponse({"pong": True})

    app = build_app(
        extra_routes=[Route("/api/ping", ping, methods=["GET"])],
        extra_openapi_paths={"/api/ping": {"get": {"responses": {"200": {"description": "ok"}}}}},
    )
    client = TestClient(app)

    assert client.get("/api/ping").json() == {"pong": True}
    assert "/api/ping" in client.get("/openapi.json").json()["paths"]
    assert client.get("/openapi.json").json()["paths"]["/api/ping"]["get"]["responses"]


@pytest.fixture
def api_schema() -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", build_app())


schema = schemathesis.pytest.from_fixture("api_schema")


_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@schema.parametrize()
@_SETTINGS
def test_the_app_answers_a_user_as_its_document_says(case: Any) -> None:
    call_and_validate_as(case, ALICE)


@schema.parametrize()
@_SETTINGS
def test_the_app_answers_an_admin_as_its_document_says(case: Any) -> None:
    call_and_validate_as(case, ROOT)
