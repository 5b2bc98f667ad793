"""``GET /`` reports the API's base URL as the client reached it, however the app is hosted.

Unless ``TOKENPLANS_BASE_URL`` configures it, the URL comes from the request: its scheme
(``X-Forwarded-Proto`` is applied by uvicorn for trusted proxies), its ``Host`` header and
the mount prefix (``root_path``), plus ``/api``. ``tokenplans serve`` is covered end to end
in ``tests/e2e/test_e2e_base_url.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from http_support import build_app
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from tokenplans_adapters.main.app import build_app as build_configured_app
from tokenplans_adapters.main.config import Settings

HOSTS = ["api.example.com", "api.example.com:8443", "10.1.2.3:8000", "[::1]:8000"]


def _base_url(client: TestClient, path: str = "/", host: str | None = None) -> object:
    headers = {} if host is None else {"Host": host}
    return client.get(path, headers=headers).json()["base_url"]


@pytest.mark.parametrize("host", HOSTS)
def test_the_base_url_follows_the_host_the_client_sent(host: str) -> None:
    client = TestClient(build_app())

    assert _base_url(client, host=host) == f"http://{host}/api"


def test_the_base_url_keeps_the_scheme_the_request_came_with() -> None:
    client = TestClient(build_app(), base_url="https://billing.example")

    assert _base_url(client) == "https://billing.example/api"


def test_the_base_url_honours_a_root_path_set_by_the_server() -> None:
    # What `uvicorn --root-path /billing` does behind a proxy that strips the prefix.
    client = TestClient(build_app(), root_path="/billing")

    assert _base_url(client, host="api.example.com") == "http://api.example.com/billing/api"


@pytest.fixture
def factory_settings(tmp_path: Path) -> Callable[..., Settings]:
    def settings(**options: object) -> Settings:
        return Settings(
            database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", jwt_secret="s" * 48, **options
        )

    return settings


@pytest.mark.parametrize("host", HOSTS)
def test_the_asgi_factory_app_derives_the_base_url_from_the_request(
    factory_settings: Callable[..., Settings], host: str
) -> None:
    client = TestClient(build_configured_app(factory_settings()))

    assert _base_url(client, host=host) == f"http://{host}/api"


def test_a_configured_base_url_wins_whatever_the_host(
    factory_settings: Callable[..., Settings],
) -> None:
    settings = factory_settings(base_url="https://tokens.example.com/api")
    client = TestClient(build_configured_app(settings))

    assert _base_url(client, host="internal:8000") == "https://tokens.example.com/api"


def _in_starlette(billing: Starlette) -> Starlette:
    return Starlette(routes=[Mount("/billing", app=billing)])


def _in_fastapi(billing: Starlette) -> FastAPI:
    host = FastAPI()
    host.mount("/billing", billing)
    return host


@pytest.mark.parametrize("mount", [_in_starlette, _in_fastapi], ids=["starlette", "fastapi"])
@pytest.mark.parametrize("host", HOSTS)
def test_a_mounted_app_reports_the_host_and_the_mount(
    factory_settings: Callable[..., Settings],
    mount: Callable[[Starlette], Starlette],
    host: str,
) -> None:
    client = TestClient(mount(build_configured_app(factory_settings())))

    assert _base_url(client, "/billing/", host=host) == f"http://{host}/billing/api"
