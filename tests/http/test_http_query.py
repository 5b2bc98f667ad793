"""Every route refuses a query parameter it does not document, as an unknown body field
is refused: a misspelt ``?limt=5`` is a 422 naming it, never silently ignored. The routes
come from the app itself (payments included), so a new one is covered without a word."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from http_support import ALICE, ROOT, build_full_app
from starlette.routing import Route
from starlette.testclient import TestClient

_EXAMPLE_PARAMETERS = {"subject": "bob", "hold_id": "h-1"}


def _routes() -> Iterator[Any]:
    app, _service = build_full_app()
    for route in app.routes:
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield pytest.param(method, route.path, id=f"{method} {route.path}")


def _url(path: str) -> str:
    for name, value in _EXAMPLE_PARAMETERS.items():
        path = path.replace(f"{{{name}}}", value)
    return path


@pytest.mark.parametrize(("method", "path"), list(_routes()))
def test_an_unknown_query_parameter_is_a_422_on_every_route(method: str, path: str) -> None:
    app, service = build_full_app()
    client = TestClient(app)
    headers = ROOT if path.startswith("/api/admin/") else ALICE

    response = client.request(method, _url(path), params={"limt": "5"}, headers=headers)

    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid request",
        "message": "unknown query parameter(s): limt",
    }
    assert service.store.history("alice", limit=10) == []
    assert service.store.history("bob", limit=10) == []


@pytest.mark.parametrize(
    "path", ["/api/tokens/usage", "/api/tokens/ledger", "/api/admin/accounts/bob"]
)
def test_a_missing_credential_is_still_the_401_first(path: str) -> None:
    app, _service = build_full_app()

    response = TestClient(app).get(path, params={"limt": "5"})

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/tokens/ledger", {"limit": "5", "cursor": ""}),
        ("/api/admin/accounts/bob/ledger", {"limit": "5"}),
    ],
)
def test_a_documented_query_parameter_is_taken(path: str, params: dict[str, str]) -> None:
    app, _service = build_full_app()

    response = TestClient(app).get(path, params=params, headers=ROOT)

    assert response.status_code == 200, response.text


def test_a_public_route_refuses_an_unknown_parameter_whatever_the_credential() -> None:
    app, _service = build_full_app()

    response = TestClient(app).get("/api/health", params={"verbose": "1"})

    assert response.status_code == 422
    assert response.json()["message"] == "unknown query parameter(s): verbose"
