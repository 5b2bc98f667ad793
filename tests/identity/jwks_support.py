"""A local JWKS endpoint for the identity tests: it counts its requests, can answer
slowly, fail, or hold each request until the test lets it go."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

#: How long a held request may wait before the test calls it stuck: generous, since
#: "stuck" here means waiting for a fetch the test never lets finish.
STUCK_S = 20


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 that counts requests, sleeps ``delay`` seconds per
    request, and holds each one until ``gate`` is set."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.delay = 0.0
        self.status = 200
        self.requests = 0
        self.gate = threading.Event()
        self.gate.set()
        self.in_flight = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.requests += 1
                server.in_flight.set()
                server.gate.wait(STUCK_S)
                time.sleep(server.delay)
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.gate.set()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()
