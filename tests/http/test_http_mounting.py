"""The app mounted under a prefix in a host Starlette or FastAPI app answers the same."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from http_support import ALICE, ROOT, build_app
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

#: (method, path, body) with the responses that must not depend on the mount point.
REQUESTS = [
    ("GET", "/api/health", None, {}),
    ("GET", "/api/health/ready", None, {}),
    ("GET", "/api/plans", None, {}),
    ("GET", "/api/tokens/usage", None, ALICE),
    ("POST", "/api/tokens/consume", {"amount": 10, "idempotency_key": "m-1"}, ALICE),
    ("POST", "/api/tokens/consume", {"amount": 5000}, ALICE),
    ("POST", "/api/tokens/set-plan", {"plan": "premium"}, ALICE),
    ("POST", "/api/tokens/set-plan", {"plan": "nope"}, ALICE),
    ("GET", "/api/tokens/ledger", None, ALICE),
    ("GET", "/api/tokens/usage", None, {}),
    ("POST", "/api/admin/accounts/bob/grant", {"amount": 5}, ROOT),
    ("GET", "/api/admin/accounts/bob", None, ROOT),
    ("GET", "/api/tokens/unknown", None, {}),
    ("DELETE", "/api/tokens/usage", None, ALICE),
]


def _answers(client: TestClient, prefix: str) -> list[tuple[int, object]]:
    return [
        (r.status_code, r.json())
        for r in (
            client.request(method, prefix + path, json=body, headers=headers)
            for method, path, body, headers in REQUESTS
        )
    ]


def _host_starlette(billing: Starlette) -> Starlette:
    async def home(_request: object) -> PlainTextResponse:
        return PlainTextResponse("host home")

    return Starlette(routes=[Route("/", home), Mount("/billing", app=billing)])


def _host_fastapi(billing: Starlette) -> FastAPI:
    host = FastAPI()

    @host.get("/")
    def home() -> dict[str, str]:
        return {"host": "home"}

    host.mount("/billing", billing)
    return host


@pytest.mark.parametrize("host", [_host_starlette, _host_fastapi], ids=["starlette", "fastapi"])
def test_a_mounted_app_answers_like_a_standalone_one(
    make_app: Callable[..., Starlette], host: Callable[[Starlette], Starlette]
) -> None:
    standalone = _answers(TestClient(make_app()), "")
    host_client = TestClient(host(build_app()))  # its own store: both start from nothing

    mounted = _answers(host_client, "/billing")

    assert mounted == standalone
    assert host_client.get("/").status_code == 200


@pytest.mark.parametrize("host", [_host_starlette, _host_fastapi], ids=["starlette", "fastapi"])
def test_a_mounted_app_points_its_links_at_the_mount(
    make_app: Callable[..., Starlette], host: Callable[[Starlette], Starlette]
) -> None:
    client = TestClient(host(make_app()))

    root = client.get("/billing/").json()
    document = client.get("/billing/openapi.json").json()
    docs = client.get("/billing/docs")
    asset = client.get("/billing/docs/assets/swagger-ui.css")

    assert root["base_url"] == "http://testserver/billing/api"
    assert document["servers"] == [{"url": "/billing"}]
    assert (docs.status_code, asset.status_code) == (200, 200)
