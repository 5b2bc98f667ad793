"""The payment operations keep the OpenAPI document's word: Schemathesis generates valid
and invalid requests for them (signatures, ids and headers included) and checks that no
answer is a 5xx, every status is documented and every body matches its schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from payments_support import payment_service
from schema_checks import call_and_validate_as
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from tokenplans import ADMIN_SCOPE, PlanCatalog, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock, StaticIdentity
from tokenplans_adapters.http import create_app
from tokenplans_adapters.razorpay import OfflineGateway

USER = {"Authorization": "Bearer user-token"}
ADMIN = {"Authorization": "Bearer admin-token"}


def build_app() -> Starlette:
    tokens = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())
    identity = StaticIdentity(
        {
            "user-token": Principal("carol"),
            "admin-token": Principal("root", {ADMIN_SCOPE}),
        }
    )
    return create_app(
        tokens, identity, payments=payment_service(tokens, OfflineGateway("openapi-secret"))
    )


def test_every_payment_route_is_documented_with_its_errors() -> None:
    app = build_app()
    served = {
        (method.lower(), route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/api/payments")
        for method in (route.methods or ()) - {"HEAD"}
    }
    paths = TestClient(app).get("/openapi.json").json()["paths"]
    documented = {
        (method, path)
        for path, item in paths.items()
        if path.startswith("/api/payments")
        for method in item
    }

    assert served == documented
    for method, path in documented:
        operation = paths[path][method]
        codes = set(operation["responses"])
        assert {"200", "404", "405", "500"} <= codes, (method, path)
        if "security" in operation:
            assert "401" in codes, (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= codes, (method, path)


@pytest.fixture
def api_schema() -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", build_app()).include(
        path_regex="^/api/payments"
    )


schema = schemathesis.pytest.from_fixture("api_schema")

_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@schema.parametrize()
@_SETTINGS
def test_the_payment_endpoints_answer_a_user_as_documented(case: Any) -> None:
    call_and_validate_as(case, USER)


@schema.parametrize()
@_SETTINGS
def test_the_payment_endpoints_answer_an_admin_as_documented(case: Any) -> None:
    call_and_validate_as(case, ADMIN)
