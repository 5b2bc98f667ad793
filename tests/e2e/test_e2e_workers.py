"""End to end: a ``tokenplans serve`` worker killed while the supervisor pings it is
replaced within seconds, not after a minute.

uvicorn's supervisor pings each worker in turn and waits up to its liveness timeout for
the answer; a worker killed during that wait is noticed only when it runs out, and no
other worker is checked meanwhile. The test stops a worker (SIGSTOP, so the next ping to
it hangs), kills it, and times how long until a new worker takes its place. With the 60 s
timeout ``serve`` used to pass, that took about a minute; uvicorn's own 5 s brings it to
a few seconds. The bound below sits far from both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_e2e_serve import SECRET, _stop, _wait_until_healthy, free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads workers from /proc"),
]

#: Far above the few seconds a replacement takes now, far below the minute it took.
REPLACED_WITHIN_S = 40


def workers_of(parent: int) -> set[int]:
    """The supervisor's worker processes (spawned children; not its resource tracker)."""
    found: set[int] = set()
    for task in Path(f"/proc/{parent}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue  # gone meanwhile
            if b"spawn_main" in command and b"resource_tracker" not in command:
                found.add(int(child))
    return found


def wait_for(condition: object, within_s: float) -> float:
    """Seconds until ``condition()`` holds, checked every 0.1 s; fails after ``within_s``."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if condition():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"not within {within_s} s")


def test_a_worker_killed_while_it_is_pinged_is_replaced_within_seconds(tmp_path: Path) -> None:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENPLANS_", "JWT_"))}
    env = {
        **clean,
        "TOKENPLANS_JWT_SECRET": SECRET,
        "TOKENPLANS_DATABASE_URL": f"sqlite:///{tmp_path / 'workers.db'}",
    }
    err = tmp_path / "serve.err"
    with err.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [
                str(Path(sys.executable).with_name("tokenplans")),
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, url, err)
        wait_for(lambda: len(workers_of(process.pid)) == 2, within_s=60)
        before = workers_of(process.pid)
        victim = min(before)

        os.kill(victim, signal.SIGSTOP)  # the supervisor's next ping to it now hangs
        time.sleep(1.5)
        os.kill(victim, signal.SIGKILL)
        took = wait_for(
            lambda: (
                len(workers_of(process.pid) - before) == 1 and victim not in workers_of(process.pid)
            ),
            within_s=REPLACED_WITHIN_S,
        )

        assert took < REPLACED_WITHIN_S
        assert httpx.get(f"{url}/api/health", timeout=10).status_code == 200
    finally:
        _stop(process)
