"""The composition root wires the usage page from the settings, and ``serve --dev``
prints a link to it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from starlette.testclient import TestClient

from tokenplans_adapters.jwt_identity import mint_token
from tokenplans_adapters.main import Settings, build_app
from tokenplans_adapters.main.cli import main
from tokenplans_adapters.main.config import ConfigError
from tokenplans_adapters.sql import upgrade_schema

SECRET = "portal-wiring-secret-that-is-long-enough-0123456789"
PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
-----END PUBLIC KEY-----"""


def _settings(workdir: Path, **variables: str) -> Settings:
    url = f"sqlite:///{workdir / 'app.sqlite3'}"
    upgrade_schema(url)
    return Settings.from_env({"TOKENPLANS_DATABASE_URL": url, **variables})


def test_the_page_is_served_with_a_key_derived_from_the_jwt_secret(workdir: Path) -> None:
    token = mint_token("alice", secret=SECRET)
    with TestClient(build_app(_settings(workdir, TOKENPLANS_JWT_SECRET=SECRET))) as client:
        link = client.post(
            "/api/tokens/portal-link", headers={"Authorization": f"Bearer {token}"}
        ).json()["url"]
        client.get(link)
        page = client.get("/account")
        document = client.get("/openapi.json").json()

    assert page.status_code == 200
    assert "alice" in page.text
    assert "/api/tokens/portal-link" in document["paths"]


def test_links_point_at_the_configured_base_url_without_its_api(workdir: Path) -> None:
    settings = _settings(
        workdir,
        TOKENPLANS_JWT_SECRET=SECRET,
        TOKENPLANS_BASE_URL="https://tokens.example.com/billing/api",
    )
    token = mint_token("alice", secret=SECRET)
    with TestClient(build_app(settings)) as client:
        link = client.post(
            "/api/tokens/portal-link", headers={"Authorization": f"Bearer {token}"}
        ).json()["url"]

    assert link.startswith("https://tokens.example.com/billing/account/open?token=")


def test_without_a_secret_to_sign_with_there_is_no_page(workdir: Path) -> None:
    settings = _settings(
        workdir, TOKENPLANS_JWT_PUBLIC_KEY=PUBLIC_KEY, TOKENPLANS_JWT_ALGORITHMS="EdDSA"
    )
    with TestClient(build_app(settings)) as client:
        assert client.get("/account").status_code == 404
        assert client.post("/api/tokens/portal-link").status_code == 404


def test_a_short_page_secret_is_refused(workdir: Path) -> None:
    settings = _settings(workdir, TOKENPLANS_JWT_SECRET=SECRET, TOKENPLANS_PORTAL_SECRET="short")

    with pytest.raises(ConfigError, match="TOKENPLANS_PORTAL_SECRET"):
        build_app(settings)


def test_offline_payments_on_the_page_need_the_offline_gateway(workdir: Path) -> None:
    settings = _settings(
        workdir,
        TOKENPLANS_JWT_SECRET=SECRET,
        TOKENPLANS_PORTAL_OFFLINE_PAYMENTS="true",
        RAZORPAY_KEY_ID="rzp_test_x",
        RAZORPAY_KEY_SECRET="a-razorpay-secret",
    )

    with pytest.raises(ConfigError, match="TOKENPLANS_PORTAL_OFFLINE_PAYMENTS"):
        build_app(settings)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, str]]]:
    saved = dict(os.environ)
    runs: list[dict[str, str]] = []

    def run(*_args: Any, **_kwargs: Any) -> None:
        runs.append(dict(os.environ))

    monkeypatch.setattr(uvicorn, "run", run)
    yield runs
    os.environ.clear()
    os.environ.update(saved)


def test_the_dev_banner_prints_a_link_to_the_page_that_opens_it(
    served: list[dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOKENPLANS_PORTAL_SECRET", "a-production-page-secret-0123456789-abc")
    assert main(["serve", "--dev", "--port", "18766"]) == 0
    banner = capsys.readouterr().out
    found = re.search(r"(http://127\.0\.0\.1:18766/account/open\?token=\S+)", banner)
    assert found is not None
    workers = Settings.from_env(served[0], env_file=None)

    with TestClient(build_app(workers)) as client:
        opened = client.get(urlsplit(found.group(1))._replace(scheme="", netloc="").geturl())
        page = client.get("/account")

    assert "usage page" in banner
    assert opened.status_code == 200
    assert "dev-user" in page.text
    assert 'data-testid="upgrade-standard"' in page.text
    assert workers.portal_offline_payments is True
    assert workers.portal_secret is None  # the configured one is ignored in dev mode
    assert "usage page's secret" in banner
