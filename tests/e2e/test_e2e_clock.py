"""End to end: two real ``tokenplans serve`` processes whose clocks are two hours apart
(libfaketime: Debian's ``faketime``), sharing one PostgreSQL or MariaDB database.

The database's clock decides: a hold one server placed for an hour is open on the other
too, so its tokens are spent once, and the ledger's entries stay in order of time
whichever server wrote them. (On SQLite the process's clock is the database's: the file
lives on one host, so two processes there cannot disagree, except under faketime.)
Without ``faketime`` this skips, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from test_e2e_serve import SECRET, _stop, _wait_until_healthy, free_port

from tokenplans import ADMIN_SCOPE
from tokenplans_adapters.jwt_identity import mint_token

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _libfaketime() -> str:
    """The ``LD_PRELOAD`` that ``faketime`` sets (asked of it, as its path varies)."""
    found = shutil.which("faketime")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("faketime is missing (apt-get install faketime)")
        pytest.skip("faketime is not installed (apt-get install faketime)")
    shown = subprocess.run(  # noqa: S603 - the faketime found above
        [found, "-f", "+0", "/bin/sh", "-c", 'printf %s "$LD_PRELOAD"'],
        capture_output=True,
        text=True,
        check=True,
    )
    return shown.stdout


@contextmanager
def serving_skewed(offset: str, *, cwd: Path, database: str) -> Iterator[str]:
    """``tokenplans serve`` on ``database`` with its wall clock moved by ``offset`` (a
    libfaketime offset such as ``+2h``); yields its base URL."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENPLANS_", "JWT_"))}
    env = {
        **clean,
        "TOKENPLANS_JWT_SECRET": SECRET,
        "TOKENPLANS_DATABASE_URL": database,
        # The server runs under libfaketime itself (not under the faketime wrapper, which
        # would stand between it and the SIGINT that stops it). Only the wall clock
        # moves: timeouts and uvicorn's supervision keep real time.
        "LD_PRELOAD": _libfaketime(),
        "FAKETIME": offset,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    err = cwd / f"serve-{port}.err"
    with (cwd / f"serve-{port}.out").open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [
                str(Path(sys.executable).with_name("tokenplans")),
                "serve",
                "--port",
                str(port),
            ],
            cwd=cwd,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, url, err)
        yield url
    finally:
        _stop(process)


def _bearer(subject: str, *, admin: bool = False) -> dict[str, str]:
    # Valid for a day: each server checks a token's expiry by its own clock.
    token = mint_token(
        subject, secret=SECRET, scopes=[ADMIN_SCOPE] if admin else [], ttl=timedelta(days=1)
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "variable",
    [
        pytest.param("TOKENPLANS_TEST_POSTGRES_URL", marks=pytest.mark.postgres, id="postgresql"),
        pytest.param("TOKENPLANS_TEST_MYSQL_URL", marks=pytest.mark.mysql, id="mariadb"),
    ],
)
def test_two_servers_two_hours_apart_spend_a_hold_once_in_order_of_time(
    tmp_path: Path, variable: str
) -> None:
    database = os.environ.get(variable)
    if not database:
        pytest.skip(f"{variable} is not set")
    _libfaketime()
    # A token both servers accept (a JWT's expiry is checked by each one's own clock).
    subject = f"e2e-clock-{uuid.uuid4().hex[:12]}"
    me = _bearer(subject)
    admin = _bearer("e2e-clock-admin", admin=True)
    with (
        serving_skewed("+0", cwd=tmp_path, database=database) as on_time,
        serving_skewed("+2h", cwd=tmp_path, database=database) as ahead,
        httpx.Client(base_url=on_time, timeout=30) as a,
        httpx.Client(base_url=ahead, timeout=30) as b,
    ):
        # A hold of everything for an hour on one server...
        reserved = a.post(
            "/api/tokens/holds",
            headers=me,
            json={"amount": 1000, "hold_id": "call-1", "ttl_seconds": 3600},
        )
        assert reserved.status_code == 201, reserved.text
        # ...is still open on the other, whose own clock says it lapsed an hour ago.
        refused = b.post("/api/tokens/consume", headers=me, json={"amount": 1000})
        assert refused.status_code == 402, refused.text
        assert b.get("/api/tokens/holds", headers=me).json()["token_held"] == 1000
        settled = a.post("/api/tokens/holds/call-1/settle", headers=me, json={"amount": 1000})
        assert settled.status_code == 200, settled.text
        # Interleaved writes from both servers.
        for server in (b, a, b, a):
            granted = server.post(
                f"/api/admin/accounts/{subject}/grant", headers=admin, json={"amount": 1}
            )
            assert granted.status_code == 200, granted.text

        usage = b.get("/api/tokens/usage", headers=me).json()
        assert (usage["token_used"], usage["token_held"], usage["token_quota"]) == (1000, 0, 1004)
        entries = a.get("/api/tokens/ledger", headers=me, params={"limit": 100}).json()["entries"]
        kinds = [entry["kind"] for entry in entries]
        assert "hold_expired" not in kinds
        instants = [datetime.fromisoformat(entry["at"]) for entry in reversed(entries)]
        assert instants == sorted(instants)
