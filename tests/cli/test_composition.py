"""The composition root: settings in, a working app out; nothing happens on import."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tokenplans_adapters.jwt_identity import mint_token
from tokenplans_adapters.main import Settings, build_app
from tokenplans_adapters.sql import upgrade_schema

SECRET = "composition-secret-that-is-long-enough-0123456789"


def test_importing_the_asgi_factory_module_does_no_work(workdir: Path) -> None:
    sys.modules.pop("tokenplans_adapters.main.asgi", None)

    importlib.import_module("tokenplans_adapters.main.asgi")

    assert list(workdir.iterdir()) == []  # no database file, no engine


def test_build_app_serves_the_api_over_the_configured_database(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'app.sqlite3'}"
    upgrade_schema(url)
    settings = Settings.from_env({"TOKENPLANS_DATABASE_URL": url, "TOKENPLANS_JWT_SECRET": SECRET})
    token = mint_token("alice", secret=SECRET)

    with TestClient(build_app(settings)) as client:
        ready = client.get("/api/health/ready")
        consumed = client.post(
            "/api/tokens/consume",
            headers={"Authorization": f"Bearer {token}"},
            json={"amount": 250},
        )

    assert ready.status_code == 200
    assert consumed.status_code == 200
    assert consumed.json()["remaining"] == 750


def test_the_asgi_factory_reads_its_settings_from_the_environment(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{workdir / 'factory.sqlite3'}"
    upgrade_schema(url)
    monkeypatch.setenv("TOKENPLANS_DATABASE_URL", url)
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", SECRET)
    monkeypatch.setenv("TOKENPLANS_BASE_URL", "https://billing.example")
    from tokenplans_adapters.main.asgi import create  # noqa: PLC0415 - after the environment is set

    with TestClient(create()) as client:
        assert client.get("/").json()["base_url"] == "https://billing.example"
        usage = client.get(
            "/api/tokens/usage",
            headers={"Authorization": f"Bearer {mint_token('bob', secret=SECRET)}"},
        )

    assert usage.json()["plan"] == "basic"


_LEAN_SERVER = """
import sys
from tokenplans_adapters.main.commands.db import upgrade_apart
from tokenplans_adapters.main import Settings, build_app
from starlette.testclient import TestClient
settings = Settings.from_env({"TOKENPLANS_DATABASE_URL": sys.argv[1],
                              "TOKENPLANS_JWT_SECRET": sys.argv[2]})
upgrade_apart(settings)  # what `tokenplans serve` does before serving in this process
with TestClient(build_app(settings)) as client:
    assert client.get("/api/health/ready").status_code == 200
print(sorted({name.split(".")[0] for name in sys.modules} & {"alembic", "mako", "httpx"}))
"""


def test_a_server_on_the_offline_gateway_never_loads_alembic_nor_httpx(workdir: Path) -> None:
    # Measured: Alembic with Mako is about 10 MiB of a worker's memory, httpx about 5.
    url = f"sqlite:///{workdir / 'lean.sqlite3'}"

    run = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _LEAN_SERVER, url, SECRET],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
