"""A real local webhook receiver for the tests: an HTTP server on 127.0.0.1 in a thread
that records every request and answers with the status the test sets (or sleeps)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs


@attrs.define
class Received:
    headers: dict[str, str]
    body: bytes


@attrs.define
class Receiver:
    url: str
    status: int = 204
    delay: float = 0.0
    received: list[Received] = attrs.field(factory=list)
    lock: threading.Lock = attrs.field(factory=threading.Lock)


@contextmanager
def receiver(status: int = 204) -> Iterator[Receiver]:
    """A receiver answering ``status`` (changeable through ``.status``) until the block
    ends; ``.received`` holds every request, answered or not."""
    state: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            me: Receiver = state["receiver"]
            with me.lock:
                me.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            if me.delay:
                time.sleep(me.delay)
            self.send_response(me.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()
