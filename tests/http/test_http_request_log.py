"""The middlewares' cheap paths answer as the full ones did: ``Vary: Origin`` on a
request without an ``Origin``, CORS headers with one, the request id on every answer;
and the one line per slow request that stands in for uvicorn's access log."""

from __future__ import annotations

import asyncio

import pytest
from http_support import ALICE, build_app
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

REQUESTS_LOGGER = "tokenplans_adapters.http.requests"


def test_a_request_without_an_origin_gets_vary_origin_and_no_cors_headers() -> None:
    with TestClient(build_app()) as client:
        answer = client.get("/api/tokens/usage", headers=ALICE)

    assert answer.status_code == 200
    assert answer.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in answer.headers
    assert len(answer.headers["x-request-id"]) == 32


def test_a_request_from_an_allowed_origin_gets_the_cors_headers() -> None:
    origin = "http://localhost:5173"
    with TestClient(build_app()) as client:
        answer = client.get("/api/tokens/usage", headers={**ALICE, "Origin": origin})

    assert answer.headers["access-control-allow-origin"] == origin
    assert answer.headers["access-control-expose-headers"] == "X-Request-ID"
    assert "Origin" in answer.headers["vary"]


def test_vary_origin_is_added_after_a_vary_the_answer_already_has() -> None:
    async def varying(_request: Request) -> Response:
        return JSONResponse({}, headers={"Vary": "Accept-Encoding"})

    with TestClient(build_app(extra_routes=[Route("/varying", varying)])) as client:
        answer = client.get("/varying")

    assert answer.headers.get_list("vary") == ["Accept-Encoding, Origin"]


def test_an_answer_that_sets_a_request_id_gets_the_request_s_one_only() -> None:
    async def own_id(_request: Request) -> Response:
        return JSONResponse({}, headers={"X-Request-ID": "the-handler-s"})

    with TestClient(build_app(extra_routes=[Route("/own-id", own_id)])) as client:
        answer = client.get("/own-id", headers={"X-Request-ID": "the-caller-s"})

    assert answer.headers.get_list("x-request-id") == ["the-caller-s"]


async def _slow(_request: Request) -> Response:
    await asyncio.sleep(0.05)
    return JSONResponse({"slow": True})


def test_a_request_slower_than_the_limit_is_logged_with_its_status_and_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = build_app(extra_routes=[Route("/slow", _slow)], slow_request_ms=20)
    with caplog.at_level("WARNING", logger=REQUESTS_LOGGER), TestClient(app) as client:
        client.get("/slow", headers={"X-Request-ID": "slow-1"})

    (line,) = [r.getMessage() for r in caplog.records if r.name == REQUESTS_LOGGER]
    assert line.startswith("GET /slow answered 200 in ")
    assert line.endswith(" ms (request id slow-1)")


def test_no_request_is_logged_when_the_limit_is_off(caplog: pytest.LogCaptureFixture) -> None:
    app = build_app(extra_routes=[Route("/slow", _slow)], slow_request_ms=0)
    with caplog.at_level("DEBUG", logger=REQUESTS_LOGGER), TestClient(app) as client:
        client.get("/slow")
        client.get("/api/tokens/usage", headers=ALICE)

    assert [r for r in caplog.records if r.name == REQUESTS_LOGGER] == []
