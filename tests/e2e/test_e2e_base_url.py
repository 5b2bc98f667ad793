"""End to end: under the real ``tokenplans serve``, ``GET /`` reports the base URL the
client used: its ``Host``, the ``/api`` suffix, and the scheme a trusted proxy forwarded
(uvicorn trusts ``X-Forwarded-Proto`` from 127.0.0.1 by default)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from test_e2e_serve import SECRET, serving

from tokenplans_adapters.jwt_identity import mint_token

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_serve_on_all_interfaces_reports_the_host_each_client_sent(tmp_path: Path) -> None:
    env = {"TOKENPLANS_JWT_SECRET": SECRET}
    with serving("--host", "0.0.0.0", cwd=tmp_path, env=env) as (url, _):  # noqa: S104
        port = url.rsplit(":", 1)[1]
        plain = httpx.get(f"{url}/").json()["base_url"]
        named = httpx.get(f"{url}/", headers={"Host": "tokens.example.com"}).json()["base_url"]
        proxied = httpx.get(
            f"{url}/",
            headers={"Host": "tokens.example.com", "X-Forwarded-Proto": "https"},
        ).json()["base_url"]

    assert plain == f"http://127.0.0.1:{port}/api"
    assert named == "http://tokens.example.com/api"
    assert proxied == "https://tokens.example.com/api"


def test_serve_reports_a_configured_base_url(tmp_path: Path) -> None:
    env = {"TOKENPLANS_JWT_SECRET": SECRET, "TOKENPLANS_BASE_URL": "https://t.example/api"}
    with serving(cwd=tmp_path, env=env) as (url, _):
        reported = httpx.get(f"{url}/", headers={"Host": "other.example"}).json()["base_url"]

    assert reported == "https://t.example/api"


def test_serve_logs_why_a_token_was_refused_and_why_a_request_got_503(tmp_path: Path) -> None:
    # No webhook worker: its polls would hold pooled connections open, and SQLite keeps
    # serving an open connection from the deleted file (the readiness check would pass).
    env = {"TOKENPLANS_JWT_SECRET": SECRET, "TOKENPLANS_WEBHOOK_WORKER": "false"}
    wrong_key = mint_token("alice", secret="another-secret-long-enough-for-hs256-0123456789")
    with serving(cwd=tmp_path, env=env) as (url, _):
        port = url.rsplit(":", 1)[1]
        refused = httpx.get(
            f"{url}/api/tokens/usage", headers={"Authorization": f"Bearer {wrong_key}"}
        )
        (tmp_path / "tokenplans.sqlite3").unlink()  # the database vanishes under the server
        ready = httpx.get(f"{url}/api/health/ready")
    log = (tmp_path / f"serve-{port}.err").read_text()

    assert (refused.status_code, ready.status_code) == (401, 503)
    assert (
        "tokenplans_adapters.jwt_identity.identity: refused a bearer token: InvalidSignatureError"
        in log
    )
    assert wrong_key not in log
    assert "tokenplans_adapters.http: 503 on GET /api/health/ready" in log
