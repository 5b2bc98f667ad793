"""End to end: ``tokenplans serve --workers 2`` answers ``/metrics`` from whichever worker
a connection reaches with the whole server's counts (prometheus_client's multiprocess
mode, in a folder ``serve`` makes for its workers and removes when it stops)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_e2e_serve import SECRET, bearer, serving
from test_e2e_workers import wait_for, workers_of

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads workers from /proc"),
]

DEBITS = 24
SCRAPES = 12


def _debits(text: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "tokenplans_ledger_entries":
            return sum(s.value for s in family.samples if s.labels.get("kind") == "debited")
    return 0.0


def _multiprocess_folder(worker: int) -> str | None:
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    for variable in environ:
        name, _, value = variable.partition(b"=")
        if name == b"PROMETHEUS_MULTIPROC_DIR":
            return value.decode()
    return None


def test_every_worker_answers_the_whole_servers_counts(tmp_path: Path) -> None:
    env = {
        "TOKENPLANS_JWT_SECRET": SECRET,
        "TOKENPLANS_DATABASE_URL": f"sqlite:///{tmp_path / 'metrics.db'}",
    }
    with serving("--workers", "2", cwd=tmp_path, env=env) as (url, _out):
        parent = int(next(p for p in os.listdir("/proc") if p.isdigit() and _is_serve(p, url)))
        wait_for(lambda: len(workers_of(parent)) == 2, within_s=60)
        folders = {_multiprocess_folder(worker) for worker in workers_of(parent)}
        (folder,) = folders
        assert folder is not None
        assert Path(folder).is_dir()

        for number in range(DEBITS):  # new connections: both workers take some
            with httpx.Client(base_url=url, timeout=30) as http:
                answer = http.post(
                    "/api/tokens/consume", headers=bearer(f"m-{number}"), json={"amount": 1}
                )
                assert answer.status_code == 200
        seen = []
        for _ in range(SCRAPES):
            with httpx.Client(base_url=url, timeout=30) as http:
                seen.append(_debits(http.get("/metrics").text))
            time.sleep(0.05)

        assert seen == [DEBITS] * SCRAPES
    assert not Path(folder).exists()  # removed when the server stopped


def _is_serve(pid: str, url: str) -> bool:
    """Whether ``pid`` is the ``tokenplans serve`` listening on ``url``'s port."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    port = url.rsplit(":", 1)[1].encode()
    return b"serve" in command and port in command and b"spawn_main" not in b" ".join(command)
