"""A silent partition between the app and its database becomes 503s, then recovers.

A TCP proxy of the test's own (a thread on 127.0.0.1) stands between the app and the
shared PostgreSQL or MariaDB server. Switched to black-holing, it keeps accepting and
reading but never forwards nor answers: on loopback the packets are still acknowledged,
so neither TCP keepalives nor a server-side statement timeout can end a call; only the
client's own deadline per database call (and its connect timeout) can. The servers
themselves are never touched.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from db_backends import backend_param
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from tokenplans_adapters.jwt_identity import mint_token
from tokenplans_adapters.main.app import build_app
from tokenplans_adapters.main.config import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRET = "partition-secret-that-is-long-enough-for-hs256-0123456789"
CALL_TIMEOUT_S = 2
CONNECT_TIMEOUT_S = 2
READINESS_TIMEOUT_S = 1
#: How long the test waits for any answer before failing it (the bug: forever).
GIVE_UP_S = 60


class BlackHoleProxy:
    """Forwards TCP connections to ``upstream`` until :meth:`black_hole` is called; then
    every connection, open or new, is read and never answered. :meth:`heal` resets the
    connections the partition stranded (as a peer that lost their state would) and
    forwards new ones again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.holing = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def black_hole(self) -> None:
        self.holing.set()

    def heal(self) -> None:
        with self._lock:
            stranded, self._sockets = self._sockets, []
            self.holing.clear()
        for sock in stranded:
            _close(sock)

    def close(self) -> None:
        self.listener.close()
        self.heal()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
                if self.holing.is_set():
                    threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                    continue
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets.append(server)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not self.holing.is_set():
                    sink.sendall(data)
        _close(sink)

    @staticmethod
    def _swallow(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture(params=[backend_param("postgres"), backend_param("mysql")])
def proxied(
    request: pytest.FixtureRequest, engine_for: Callable[[str], Engine]
) -> Iterator[tuple[BlackHoleProxy, str]]:
    """A proxy to the shared server (its schema upgraded), and the URL through it."""
    engine = engine_for(request.param)
    url = engine.url
    proxy = BlackHoleProxy((url.host or "127.0.0.1", url.port or 0))
    through = make_url(url).set(host="127.0.0.1", port=proxy.port)
    yield proxy, through.render_as_string(hide_password=False)
    proxy.close()


def _answer(call: Callable[[], Any]) -> tuple[Any, float]:
    """``call()``'s result and how long it took; fails the test if it takes longer than
    :data:`GIVE_UP_S` (a request hanging for the partition's length)."""
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        result = pool.submit(call).result(timeout=GIVE_UP_S)
        return result, time.monotonic() - started


def test_a_black_holed_database_answers_503_within_the_deadlines_and_recovers(
    proxied: tuple[BlackHoleProxy, str],
) -> None:
    proxy, url = proxied
    settings = Settings.from_env(
        {
            "TOKENPLANS_DATABASE_URL": url,
            "TOKENPLANS_JWT_SECRET": SECRET,
            "TOKENPLANS_DB_CALL_TIMEOUT_SECONDS": str(CALL_TIMEOUT_S),
            "TOKENPLANS_DB_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT_S),
            "TOKENPLANS_READINESS_TIMEOUT_SECONDS": str(READINESS_TIMEOUT_S),
        },
        env_file=None,
    )
    user = {"Authorization": f"Bearer {mint_token(f'u-{uuid.uuid4()}', secret=SECRET)}"}
    with TestClient(build_app(settings)) as client:

        def consume() -> Any:
            return client.post("/api/tokens/consume", headers=user, json={"amount": 1})

        def ready() -> Any:
            return client.get("/api/health/ready")

        assert consume().status_code == 200
        assert ready().status_code == 200

        proxy.black_hole()
        during, took = _answer(consume)
        probe, probe_took = _answer(ready)

        # A call's deadline, then perhaps a fresh connection's connect timeout and its
        # deadline again: bounded, whatever the margin a busy machine needs.
        assert during.status_code == 503, during.text
        assert during.headers["Retry-After"] == "1"
        assert took < 2 * CALL_TIMEOUT_S + CONNECT_TIMEOUT_S + 20
        assert probe.status_code == 503
        assert probe.json()["database"] == "down"
        assert probe_took < READINESS_TIMEOUT_S + 10

        proxy.heal()
        deadline = time.monotonic() + GIVE_UP_S
        while (after := _answer(consume)[0]).status_code != 200:
            assert time.monotonic() < deadline, after.text
        assert after.json()["token_used"] == 2
        while _answer(ready)[0].status_code != 200:
            assert time.monotonic() < deadline
