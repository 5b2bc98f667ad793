"""End to end: real ``tokenplans serve`` processes delivering webhooks to a real local
receiver, verified with the ``standardwebhooks`` package.

Killed with ``kill -9`` right after a commit and in the middle of a delivery, then
restarted: every event is delivered, a duplicate only ever with the same ``webhook-id``
and body. Two servers delivering from one database: each event reaches the endpoint
once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from receiver import Receiver, receiver
from standardwebhooks import Webhook
from test_e2e_serve import SECRET, _stop, _wait_until_healthy, bearer, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = bearer("e2e-admin", admin=True)
BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]
_URL_VARIABLES = {
    "postgres": "TOKENPLANS_TEST_POSTGRES_URL",
    "mysql": "TOKENPLANS_TEST_MYSQL_URL",
}


def _database(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'hooks.db'}"
    url = os.environ.get(_URL_VARIABLES[backend], "")
    if not url:
        pytest.skip(f"{_URL_VARIABLES[backend]} is not set")
    return url


@contextmanager
def server(database: str, cwd: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``tokenplans serve`` on ``database`` with its webhook worker, allowed to send to
    this machine, with short timeouts and retries; stopped (if still alive) at the end."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENPLANS_", "JWT_"))}
    env = {
        **clean,
        "TOKENPLANS_JWT_SECRET": SECRET,
        "TOKENPLANS_DATABASE_URL": database,
        "TOKENPLANS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "TOKENPLANS_WEBHOOK_TIMEOUT_SECONDS": "2",
        "TOKENPLANS_WEBHOOK_RETRY_SCHEDULE": "1,1,1,1,1,1,1,1,1,1",
    }
    err = cwd / f"serve-{port}.err"
    with err.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(Path(sys.executable).with_name("tokenplans")), "serve", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, url, err)
        yield url, process
    finally:
        if process.poll() is None:
            _stop(process)


def _kill_9(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _endpoint(url: str, hook: Receiver) -> dict[str, str]:
    made = httpx.post(f"{url}/api/admin/webhooks", json={"url": hook.url}, headers=ADMIN)
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def _cross(url: str, subject: str) -> None:
    """Two debits: past 80 %, then to 100 % of the subject's quota."""
    me = bearer(subject)
    quota = httpx.get(f"{url}/api/tokens/usage", headers=me).json()["token_quota"]
    for amount in (quota * 85 // 100, quota - quota * 85 // 100):
        assert httpx.post(
            f"{url}/api/tokens/consume", json={"amount": amount}, headers=me
        ).is_success


def _feed(url: str, subjects: set[str]) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    after = 0
    while True:
        page = httpx.get(f"{url}/api/admin/events?after={after}&limit=200", headers=ADMIN).json()
        if not page["events"]:
            return [e for e in events if e["subject"] in subjects]
        events += page["events"]
        after = page["next_after"]


def _wait(condition: Callable[[], bool], within_s: float = 90) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"not within {within_s} s")


def _received(
    hook: Receiver, secret: str, subjects: set[str]
) -> list[tuple[str, dict[str, object]]]:
    """(webhook-id, payload) of every request ``hook`` got for ``subjects``, each
    signature verified by the standardwebhooks package."""
    verifier = Webhook(secret)
    got = []
    with hook.lock:
        requests = list(hook.received)
    for request in requests:
        payload = json.loads(request.body)
        if payload["subject"] in subjects:
            verifier.verify(request.body, request.headers)
            got.append((request.headers["webhook-id"], payload))
    return got


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_after_a_commit_and_mid_delivery_loses_nothing(backend: str, tmp_path: Path) -> None:
    database = _database(backend, tmp_path)
    early, late = f"hooked-{uuid.uuid4().hex[:10]}", f"hooked-{uuid.uuid4().hex[:10]}"
    with receiver() as hook:
        hook.delay = 1.0  # a delivery stays in flight for a second
        with server(database, tmp_path) as (url, process):
            endpoint = _endpoint(url, hook)
            _cross(url, early)
            _wait(lambda: bool(_received(hook, endpoint["secret"], {early})))
            _cross(url, late)  # committed: answered 200
            _kill_9(process)  # mid-delivery of `early`, right after `late` committed
        hook.delay = 0
        with server(database, tmp_path) as (url, _process):
            expected = {str(e["id"]): e for e in _feed(url, {early, late})}
            assert len(expected) == 4

            def all_delivered() -> bool:
                return {i for i, _ in _received(hook, endpoint["secret"], {early, late})} >= set(
                    expected
                )

            _wait(all_delivered)
            got = _received(hook, endpoint["secret"], {early, late})
            for webhook_id, payload in got:  # a duplicate is the same event, same id
                expected_payload = {
                    k: v for k, v in expected[webhook_id].items() if k != "position"
                }
                assert payload == expected_payload
            for subject in (early, late):
                order = [p["data"]["threshold"] for _, p in got if p["subject"] == subject]  # type: ignore[index]
                assert order[0] == 80
                assert order[-1] == 100
                assert order == sorted(order)
            httpx.delete(f"{url}/api/admin/webhooks/{endpoint['id']}", headers=ADMIN)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_servers_on_one_database_deliver_each_event_once(backend: str, tmp_path: Path) -> None:
    database = _database(backend, tmp_path)
    subjects = {f"pair-{uuid.uuid4().hex[:10]}" for _ in range(8)}
    with (
        receiver() as hook,
        server(database, tmp_path) as (first, _a),
        server(database, tmp_path) as (second, _b),
    ):
        endpoint = _endpoint(first, hook)
        for index, subject in enumerate(sorted(subjects)):
            _cross(first if index % 2 else second, subject)
        _wait(lambda: len(_received(hook, endpoint["secret"], subjects)) >= 16)
        time.sleep(3)  # time for a second delivery, were there one
        ids = [i for i, _ in _received(hook, endpoint["secret"], subjects)]
        assert len(ids) == len(set(ids)) == 16
        httpx.delete(f"{first}/api/admin/webhooks/{endpoint['id']}", headers=ADMIN)
