"""A Starlette host's own routes, behind tokenplans' backend and helpers, answer like ours."""

from __future__ import annotations

import pytest
from http_support import ALICE, ROOT, build_app, identity
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from tokenplans import PlanCatalog, StorageUnavailableError, TokenService
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.http import (
    BearerBackend,
    create_app,
    identity_of,
    install_error_handlers,
    require_admin,
    require_principal,
)

UNAUTHENTICATED = [{}, {"Authorization": "Basic x"}, {"Authorization": "Bearer nobody"}]


def _host() -> Starlette:
    service = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"subject": require_principal(request).subject})

    async def ops(request: Request) -> JSONResponse:
        return JSONResponse({"admin": require_admin(request).subject})

    async def summarise(request: Request) -> JSONResponse:
        receipt = await run_in_threadpool(service.consume, require_principal(request), 5000)
        return JSONResponse({"remaining": receipt.usage.remaining})

    async def outage(_request: Request) -> JSONResponse:
        raise StorageUnavailableError("db.internal refused")

    host = Starlette(
        routes=[
            Route("/me", me),
            Route("/ops", ops),
            Route("/summarise", summarise, methods=["POST"]),
            Route("/outage", outage),
            Mount("/billing", app=build_app()),
        ],
        middleware=[Middleware(AuthenticationMiddleware, backend=BearerBackend(identity()))],
    )
    install_error_handlers(host)
    return host


@pytest.fixture
def client() -> TestClient:
    return TestClient(_host())


@pytest.mark.parametrize("headers", UNAUTHENTICATED)
def test_an_unauthenticated_host_call_gets_tokenplans_401(
    client: TestClient, headers: dict[str, str]
) -> None:
    host = client.get("/me", headers=headers)
    ours = client.get("/billing/api/tokens/usage", headers=headers)

    assert (host.status_code, host.json(), host.headers["WWW-Authenticate"]) == (
        ours.status_code,
        ours.json(),
        ours.headers["WWW-Authenticate"],
    )
    assert host.status_code == 401


def test_principals_reach_host_routes_and_admin_routes_refuse_users(client: TestClient) -> None:
    assert client.get("/me", headers=ALICE).json() == {"subject": "alice"}
    assert client.get("/ops", headers=ROOT).json() == {"admin": "root"}
    refused = client.get("/ops", headers=ALICE)
    assert (refused.status_code, refused.json()["reason"]) == (403, "admin_only")


def test_core_errors_in_host_routes_are_tokenplans_json(client: TestClient) -> None:
    short = client.post("/summarise", headers=ALICE)
    outage = client.get("/outage")

    assert (short.status_code, short.json()) == (
        402,
        {"error": "insufficient tokens", "remaining": 1000, "requested": 5000},
    )
    assert (outage.status_code, outage.json()) == (503, {"error": "database unavailable"})
    assert outage.headers["Retry-After"] == "1"


def test_identity_of_finds_the_provider_a_tokenplans_app_authenticates_with() -> None:
    provider = identity()
    service = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())

    assert identity_of(create_app(service, provider)) is provider
    with pytest.raises(TypeError, match="not a tokenplans app"):
        identity_of(Starlette())
