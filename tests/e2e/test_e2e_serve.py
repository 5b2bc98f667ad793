"""End to end: the real ``tokenplans serve`` in a subprocess, driven over HTTP.

The original service's curl flows (usage, set-plan to premium, consume, downgrade) and a
hold's reserve and settle on the embedded SQLite default, then with two uvicorn workers
on PostgreSQL and on MariaDB, where concurrent debits land on different processes and
must still add up exactly.
The development mode's printed curl line is run as printed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tokenplans import ADMIN_SCOPE
from tokenplans_adapters.jwt_identity import mint_token

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRET = "e2e-secret-that-is-long-enough-for-hs256-0123456789"
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(*args: str, cwd: Path, env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """Run ``tokenplans serve --port <free> *args`` until /api/health answers; yield its
    base URL and the file holding its stdout; stop it with Ctrl-C (SIGINT) at the end."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENPLANS_", "JWT_"))}
    out, err = cwd / f"serve-{port}.out", cwd / f"serve-{port}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [
                str(Path(sys.executable).with_name("tokenplans")),
                "serve",
                "--port",
                str(port),
                *args,
            ],
            cwd=cwd,
            env={**clean, **env},
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: workers are stopped with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, url, err)
        yield url, out
    finally:
        _stop(process)


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, err: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tokenplans serve exited with {process.returncode}:\n{err.read_text()}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"tokenplans serve did not answer within {START_TIMEOUT_S} s:\n{err.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail("tokenplans serve did not stop on SIGINT within 20 s")
    assert process.returncode == 0, f"tokenplans serve exited with {process.returncode}"


def bearer(subject: str, *, admin: bool = False) -> dict[str, str]:
    token = mint_token(subject, secret=SECRET, scopes=[ADMIN_SCOPE] if admin else [])
    return {"Authorization": f"Bearer {token}"}


def reference_flows(url: str) -> None:
    """The original service's curl flows, as a user and an admin would run them."""
    user = f"e2e-{uuid.uuid4().hex[:12]}"
    me, admin = bearer(user), bearer("e2e-admin", admin=True)
    with httpx.Client(base_url=url, timeout=30) as http:
        usage = http.get("/api/tokens/usage", headers=me)
        assert usage.status_code == 200
        reference_fields = {"plan", "token_quota", "token_used", "remaining", "plan_end_at"}
        assert reference_fields <= set(usage.json())
        assert (usage.json()["plan"], usage.json()["remaining"]) == ("basic", 1000)

        consumed = http.post("/api/tokens/consume", headers=me, json={"amount": 300})
        assert consumed.status_code == 200
        assert consumed.json()["remaining"] == 700

        # A user cannot make itself premium for free (the original service let it) ...
        refused = http.post(
            "/api/tokens/set-plan", headers=me, json={"plan": "premium", "reset_used": False}
        )
        assert refused.status_code == 403
        # ... an admin can, and the 700 left carry over.
        upgraded = http.post(
            f"/api/admin/accounts/{user}/set-plan", headers=admin, json={"plan": "premium"}
        )
        assert upgraded.status_code == 200
        assert upgraded.json()["message"] == "upgraded to premium with carry-over"
        assert (upgraded.json()["token_quota"], upgraded.json()["remaining"]) == (50700, 50700)

        assert http.post("/api/tokens/consume", headers=me, json={"amount": 700}).status_code == 200
        short = http.post("/api/tokens/consume", headers=me, json={"amount": 10**6})
        assert short.status_code == 402

        downgraded = http.post("/api/tokens/set-plan", headers=me, json={"plan": "basic"})
        assert downgraded.status_code == 200
        assert downgraded.json()["message"] == "downgraded to basic"
        after = http.get("/api/tokens/usage", headers=me).json()
        assert (after["plan"], after["token_quota"], after["token_used"]) == ("basic", 1000, 700)
        assert after["remaining"] == 300

        ledger = http.get("/api/tokens/ledger", headers=me)
        assert ledger.status_code == 200
        assert http.get("/api/tokens/usage").status_code == 401


def hold_flows(url: str) -> None:
    """Reserve before a model call and settle after, as a client of the HTTP API would:
    the retried settle applies once, the hold survives the request that made it."""
    user = f"e2e-{uuid.uuid4().hex[:12]}"
    me = bearer(user)
    with httpx.Client(base_url=url, timeout=30) as http:
        reserved = http.post(
            "/api/tokens/holds", headers=me, json={"amount": 400, "hold_id": "call-1"}
        )
        assert reserved.status_code == 201, reserved.text
        assert (reserved.json()["token_held"], reserved.json()["remaining"]) == (400, 600)
        again = http.post(
            "/api/tokens/holds", headers=me, json={"amount": 400, "hold_id": "call-1"}
        )
        assert (again.status_code, again.json()["replayed"]) == (200, True)
        assert http.get("/api/tokens/holds", headers=me).json()["token_held"] == 400

        settled = [
            http.post("/api/tokens/holds/call-1/settle", headers=me, json={"amount": 250})
            for _ in range(2)
        ]
        assert [r.status_code for r in settled] == [200, 200]
        assert [r.json()["replayed"] for r in settled] == [False, True]
        conflict = http.post("/api/tokens/holds/call-1/release", headers=me)
        assert (conflict.status_code, conflict.json()["status"]) == (409, "settled")

        usage = http.get("/api/tokens/usage", headers=me).json()
        assert (usage["token_used"], usage["token_held"], usage["remaining"]) == (250, 0, 750)
        kinds = [e["kind"] for e in http.get("/api/tokens/ledger", headers=me).json()["entries"]]
        assert kinds == ["hold_settled", "hold_placed", "opened"]


def test_serve_on_sqlite_answers_the_reference_flows_and_stops_cleanly(tmp_path: Path) -> None:
    with serving(cwd=tmp_path, env={"TOKENPLANS_JWT_SECRET": SECRET}) as (url, _):
        assert httpx.get(f"{url}/api/health/ready").status_code == 200
        reference_flows(url)
        hold_flows(url)

    assert (tmp_path / "tokenplans.sqlite3").exists()


def test_dev_mode_prints_tokens_and_a_curl_line_that_works(tmp_path: Path) -> None:
    with serving("--dev", cwd=tmp_path, env={}) as (url, out):
        printed = out.read_text()
        curl = next(
            line.strip() for line in printed.splitlines() if line.strip().startswith("curl")
        )
        tokens = re.findall(r"^\s+(eyJ[\w-]+\.[\w-]+\.[\w-]+)$", printed, re.MULTILINE)
        assert url in printed

        if shutil.which("curl"):
            answer = subprocess.run(  # noqa: S603 - the line the server printed
                [*shlex.split(curl), "--silent", "--fail"],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout
            assert '"plan":"basic"' in answer.replace(" ", "")
        user, admin = ({"Authorization": f"Bearer {token}"} for token in tokens)
        assert httpx.get(f"{url}/api/tokens/usage", headers=user).json()["subject"] == "dev-user"
        granted = httpx.post(
            f"{url}/api/admin/accounts/dev-user/grant", headers=admin, json={"amount": 5}
        )
        assert granted.status_code == 200
        assert granted.json()["token_quota"] == 1005


@pytest.mark.parametrize(
    "variable",
    [
        pytest.param("TOKENPLANS_TEST_POSTGRES_URL", marks=pytest.mark.postgres, id="postgresql"),
        pytest.param("TOKENPLANS_TEST_MYSQL_URL", marks=pytest.mark.mysql, id="mariadb"),
    ],
)
def test_two_workers_on_one_server_database_never_lose_a_debit(
    tmp_path: Path, variable: str
) -> None:
    database = os.environ.get(variable)
    if not database:
        pytest.skip(f"{variable} is not set")
    env = {"TOKENPLANS_JWT_SECRET": SECRET, "TOKENPLANS_DATABASE_URL": database}
    with serving("--workers", "2", cwd=tmp_path, env=env) as (url, _):
        reference_flows(url)
        hold_flows(url)

        subject = f"e2e-{uuid.uuid4().hex[:12]}"
        me = bearer(subject)

        def debit(_: int) -> int:
            with httpx.Client(base_url=url, timeout=60) as http:
                return http.post("/api/tokens/consume", headers=me, json={"amount": 7}).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(debit, range(100)))

        assert statuses.count(200) == 100
        usage = httpx.get(f"{url}/api/tokens/usage", headers=me).json()
        assert (usage["token_used"], usage["remaining"]) == (700, 300)
