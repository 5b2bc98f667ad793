"""End to end on Galera: a ``tokenplans serve --workers 2`` per node, a hold closed through
two servers at once, and a node lost mid-load.

Each server points at its own node, as a deployment with one application server beside
each database node would. Killing a node with ``kill -9`` must leave the other servers
serving; the lost node's server answers 503 (with Retry-After) to writes and to
readiness until the node has rejoined, then serves again; and no debit any server
acknowledged may be missing from any node.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import NamedTuple

import httpx
import pytest
from galera.cluster import GaleraCluster
from sqlalchemy import Engine
from storage_support import whole_ledger
from test_e2e_serve import SECRET, bearer, reference_flows, serving

from tokenplans import EntryKind, fold
from tokenplans_adapters.sql import SqlAccountStore

pytestmark = [pytest.mark.galera, pytest.mark.slow, pytest.mark.e2e]

WAIT_S = 120.0
CLIENTS_PER_SERVER = 2


@pytest.fixture(scope="module")
def servers(
    galera_cluster: GaleraCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """The base URL of a ``tokenplans serve --workers 2`` on each node, node1 first. They
    start one after another: each upgrades the schema, which must not race on Galera."""
    with ExitStack() as stack:
        urls = []
        for node in galera_cluster.nodes:
            env = {"TOKENPLANS_JWT_SECRET": SECRET, "TOKENPLANS_DATABASE_URL": node.url}
            cwd = tmp_path_factory.mktemp(f"serve-{node.name}")
            url, _ = stack.enter_context(serving("--workers", "2", cwd=cwd, env=env))
            urls.append(url)
        yield urls


def test_a_server_per_node_answers_the_reference_flows_and_debits_add_up_everywhere(
    servers: list[str],
) -> None:
    for url in servers:
        reference_flows(url)

    me = bearer(f"e2e-{uuid.uuid4().hex[:12]}")

    def debit(n: int) -> int:
        with httpx.Client(base_url=servers[n % len(servers)], timeout=60) as http:
            return http.post("/api/tokens/consume", headers=me, json={"amount": 7}).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(debit, range(120)))

    assert statuses.count(200) == 120
    for url in servers:
        usage = httpx.get(f"{url}/api/tokens/usage", headers=me, timeout=30).json()
        assert (usage["token_used"], usage["remaining"]) == (840, 160)


#: A hold's own fields in an answer (beside the usage and ``replayed``).
HOLD_FIELDS = (
    "hold_id",
    "status",
    "amount",
    "created_at",
    "expires_at",
    "settled",
    "overage",
    "late",
    "closed_at",
)


def _hold(answer: httpx.Response) -> dict[str, object]:
    assert answer.status_code == 200, answer.text
    return {name: answer.json()[name] for name in HOLD_FIELDS}


def test_a_hold_reserved_on_one_server_and_settled_through_two_others_at_once_applies_once(
    servers: list[str],
) -> None:
    """Reserve 300 of 1,000 on node1's server, then settle 1,200 through node2's and
    node3's at the same instant: one applies (the 200 beyond the hold and the 700 left is
    the overage), the other replays its result, and every server shows the same hold."""
    me = bearer(f"e2e-{uuid.uuid4().hex[:12]}")
    reserved = httpx.post(
        f"{servers[0]}/api/tokens/holds",
        headers=me,
        json={"amount": 300, "hold_id": "call-1"},
        timeout=30,
    )
    assert reserved.status_code == 201, reserved.text
    barrier = threading.Barrier(2)

    def settle(url: str) -> httpx.Response:
        with httpx.Client(base_url=url, headers=me, timeout=60) as http:
            http.get("/api/health")  # connected before the race starts
            barrier.wait()
            return http.post("/api/tokens/holds/call-1/settle", json={"amount": 1200})

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(settle, servers[1:]))

    replayed = sorted(answer.json()["replayed"] for answer in answers)
    assert replayed == [False, True], [answer.text for answer in answers]
    settled = _hold(answers[0])
    assert _hold(answers[1]) == settled
    assert (settled["status"], settled["settled"], settled["overage"]) == ("settled", 1200, 200)
    for url in servers:
        usage = httpx.get(f"{url}/api/tokens/usage", headers=me, timeout=30).json()
        assert (usage["token_held"], usage["token_used"]) == (0, 1200), url

    conflict = httpx.post(f"{servers[0]}/api/tokens/holds/call-1/release", headers=me, timeout=30)
    assert conflict.status_code == 409, conflict.text
    assert (conflict.json()["error"], conflict.json()["status"]) == ("hold conflict", "settled")
    for url in servers:
        read = httpx.get(f"{url}/api/tokens/holds/call-1", headers=me, timeout=30)
        assert _hold(read) == settled, url


class Attempt(NamedTuple):
    server: int
    key: str
    status: int  # 0: no HTTP answer at all
    at: float


class Load:
    """Clients debiting 1 token from one account through every server, each retrying a
    refused debit with the same idempotency key (as a client must) until it is acknowledged."""

    def __init__(self, servers: list[str], subject: str) -> None:
        self.servers = servers
        self.headers = bearer(subject)
        self.attempts: list[Attempt] = []
        self.stopping = threading.Event()
        self.abandoned = threading.Event()  # the test failed: stop retrying too
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(server, client), daemon=True)
            for server in range(len(servers))
            for client in range(CLIENTS_PER_SERVER)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, error: type[BaseException] | None, *_: object) -> None:
        if error is not None:
            self.abandoned.set()
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=WAIT_S)

    def _client(self, server: int, client: int) -> None:
        with httpx.Client(base_url=self.servers[server], timeout=60) as http:
            n = 0
            while not self.stopping.is_set():
                key = f"s{server}-c{client}-{n}"
                while self._attempt(http, server, key) != 200:
                    if self.abandoned.is_set():
                        return
                    time.sleep(0.1)
                n += 1

    def _attempt(self, http: httpx.Client, server: int, key: str) -> int:
        body = {"amount": 1, "idempotency_key": key}
        try:
            status = http.post("/api/tokens/consume", headers=self.headers, json=body).status_code
        except httpx.TransportError:
            status = 0
        with self._lock:
            self.attempts.append(Attempt(server, key, status, time.monotonic()))
        return status

    def acknowledged(self, server: int, since: float = 0.0) -> int:
        with self._lock:
            return sum(
                a.server == server and a.status == 200 and a.at > since for a in self.attempts
            )


def _wait_for(what: str, condition: Callable[[], bool]) -> float:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.1)
    pytest.fail(f"not within {WAIT_S:.0f} s: {what}")


def _ready(url: str) -> int:
    try:
        return httpx.get(f"{url}/api/health/ready", timeout=10).status_code
    except httpx.TransportError:
        return 0


def test_a_node_killed_mid_load_leaves_the_others_serving_and_loses_no_acknowledged_debit(
    galera_cluster: GaleraCluster, servers: list[str], node_engines: list[Engine]
) -> None:
    lost, lost_server = galera_cluster.nodes[2], 2
    subject = f"e2e-{uuid.uuid4().hex[:12]}"
    admin = bearer("e2e-admin", admin=True)
    granted = httpx.post(
        f"{servers[0]}/api/admin/accounts/{subject}/grant",
        headers=admin,
        json={"amount": 1_000_000},
        timeout=30,
    )
    assert granted.status_code == 200
    try:
        with Load(servers, subject) as load:
            everyone = range(len(servers))
            _wait_for(
                "every server debits", lambda: all(load.acknowledged(s) >= 5 for s in everyone)
            )

            lost.kill()
            down = _wait_for(
                "the lost node's server is not ready", lambda: _ready(servers[lost_server]) == 503
            )
            refused = httpx.post(
                f"{servers[lost_server]}/api/tokens/consume",
                headers=load.headers,
                json={"amount": 1},
                timeout=30,
            )
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "1"
            _wait_for(
                "the other servers keep debiting",
                lambda: all(load.acknowledged(s, since=down) >= 5 for s in (0, 1)),
            )

            galera_cluster.restart(lost)  # it rejoins by an incremental state transfer
            back = _wait_for(
                "the lost node's server is ready", lambda: _ready(servers[lost_server]) == 200
            )
            _wait_for(
                "the lost node's server debits again",
                lambda: load.acknowledged(lost_server, since=back) >= 5,
            )
    finally:
        if not lost.running:
            galera_cluster.restart(lost)

    # Every client ended on an acknowledged debit, so every key was acknowledged once.
    statuses = {a.status for a in load.attempts}
    assert statuses <= {200, 503}, f"answers other than 200 and 503: {statuses}"
    assert any(a.server == lost_server and a.status == 503 for a in load.attempts)
    keys = sorted({a.key for a in load.attempts})
    assert len(keys) == sum(a.status == 200 for a in load.attempts)
    for engine in node_engines:
        store = SqlAccountStore(engine, clock_source="process")
        entries = whole_ledger(store, subject)
        assert fold(entries) == store.load(subject)
        debited = sorted(
            getattr(e.facts, "idempotency_key", None)
            for e in entries
            if e.kind is EntryKind.DEBITED
        )
        assert debited == keys
