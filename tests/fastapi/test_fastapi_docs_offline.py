"""The FastAPI host's own ``/docs`` renders offline: ``mount_tokenplans`` serves it with
the Swagger UI files tokenplans ships, instead of FastAPI's CDN.

The page's HTML is checked through the ASGI app; that it really renders is checked in a
real browser: a host served by uvicorn on 127.0.0.1, opened in headless Chromium with
every request to any other host refused. That test needs Debian's ``chromium`` and the
``playwright`` package (never its downloaded browsers); it is skipped without them,
except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tokenplans import PlanCatalog, TokenService
from tokenplans.testing import InMemoryStore, SettableClock, StaticIdentity
from tokenplans_adapters.fastapi import mount_tokenplans
from tokenplans_adapters.http import create_app

CHROMIUM = "/usr/bin/chromium"
#: Bounds on waiting for a server or a page that never comes: a failure, not a margin.
START_TIMEOUT_S = 60
RENDER_TIMEOUT_MS = 60_000
CDN = "cdn.jsdelivr.net"


def _host(**options: Any) -> FastAPI:
    host = FastAPI(title="host app", **options.pop("host_options", {}))

    @host.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    service = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())
    mount_tokenplans(host, create_app(service, StaticIdentity({})), prefix="/billing", **options)
    return host


# -- the page ---------------------------------------------------------------------


def test_the_host_docs_load_swagger_ui_from_the_mounted_assets() -> None:
    client = TestClient(_host())

    page = client.get("/docs")

    assert page.status_code == 200
    assert '"/billing/docs/assets/swagger-ui-bundle.js"' in page.text
    assert '"/billing/docs/assets/swagger-ui.css"' in page.text
    assert "/billing/docs/assets/favicon-32x32.png" in page.text
    assert "https://" not in page.text
    assert '"validatorUrl": null' in page.text
    assert client.get("/billing/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/billing/docs/assets/favicon-32x32.png").status_code == 200


def test_the_host_docs_honour_the_root_path_and_the_host_settings() -> None:
    host = _host(host_options={"swagger_ui_parameters": {"deepLinking": False}})
    client = TestClient(host, root_path="/api")

    page = client.get("/docs").text

    assert '"/api/billing/docs/assets/swagger-ui-bundle.js"' in page
    assert "'/api/openapi.json'" in page or '"/api/openapi.json"' in page
    assert '"deepLinking": false' in page
    assert "host app - Swagger UI" in page


def test_without_the_option_the_host_keeps_fastapis_cdn_page() -> None:
    page = TestClient(_host(serve_host_docs=False)).get("/docs").text

    assert CDN in page


def test_a_host_without_docs_gets_none() -> None:
    client = TestClient(_host(host_options={"docs_url": None}))

    assert client.get("/docs").status_code == 404


# -- in a browser -------------------------------------------------------------------


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (the test extra has it)"
    if shutil.which(CHROMIUM) is None:
        return f"no {CHROMIUM} (Debian's chromium package)"
    return None


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium under Playwright; skipped where either is missing, but
    in CI (``CI=true``) that is a failure."""
    missing = _browser_missing()
    if missing is not None:
        message = f"cannot open a browser: {missing}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _serving(host: FastAPI) -> Iterator[str]:
    """``host`` under uvicorn on 127.0.0.1, in a thread, on a socket bound beforehand
    (no race for a free port); yields its base URL, then stops it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(host, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
        listener.close()


def _open_offline(browser: Any, url: str, screenshot: Path | None = None) -> tuple[Any, list[str]]:
    """A page at ``url`` loaded with every request off 127.0.0.1 refused; the page and
    the refused URLs."""
    page = browser.new_page()
    refused: list[str] = []

    def only_local(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(url, wait_until="load", timeout=RENDER_TIMEOUT_MS)
    return page, refused


@pytest.mark.slow
def test_the_host_docs_render_offline_in_a_browser(chromium: Any, tmp_path: Path) -> None:
    for base in _serving(_host()):
        page, refused = _open_offline(chromium, f"{base}/docs")
        host_route = page.locator('.swagger-ui .opblock-summary-path[data-path="/hello"]')
        ours = page.locator(
            '.swagger-ui .opblock-summary-path[data-path="/billing/api/tokens/usage"]'
        )

        host_route.wait_for(timeout=RENDER_TIMEOUT_MS)
        ours.wait_for(timeout=RENDER_TIMEOUT_MS)
        page.screenshot(path=tmp_path / "docs.png", full_page=False)

        assert page.locator(".swagger-ui .info .title").inner_text().startswith("host app")
        assert page.locator(".swagger-ui .opblock").count() > 20
        assert refused == []
        page.close()


@pytest.mark.slow
def test_fastapis_own_page_is_blank_offline(chromium: Any) -> None:
    """What the option is for (and that the test above could fail): the CDN page."""
    for base in _serving(_host(serve_host_docs=False)):
        page, refused = _open_offline(chromium, f"{base}/docs")

        assert any(CDN in url for url in refused)
        assert page.locator(".swagger-ui .opblock").count() == 0
        page.close()
