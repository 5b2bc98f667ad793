"""The cost of outbound events to a debit: same-run A/B.

Run ``python benchmarks/events.py`` (SQLite in a temporary file always; PostgreSQL and
MySQL/MariaDB too when ``TOKENPLANS_TEST_POSTGRES_URL`` / ``TOKENPLANS_TEST_MYSQL_URL``
are set). For each store, rounds alternate between:

* **A**: no webhook endpoint, no delivery worker;
* **B**: one endpoint configured and a delivery worker running in the same process,
  delivering to a local receiver (every event it can);

and, in both, each debit of 1 token is timed through ``TokenService.consume`` by one
writer. The thresholds are 1 % to 100 % (one event every 1 % of the quota: a hundred
times the events of the default 80/100), so B also carries the worker's claims and
deliveries while debits run. Figures are the median of the rounds' debits/s.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is sys.path[0], and its http.py (the HTTP benchmark) would
# shadow the standard library's http: drop it.
sys.path.pop(0)

import os
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tokenplans import ADMIN_SCOPE, PlanCatalog, Principal, TokenService
from tokenplans.ports import EventStore, WebhookEndpoint
from tokenplans.testing import SettableClock
from tokenplans_adapters.sql import SqlAccountStore, make_engine, upgrade_schema
from tokenplans_adapters.webhooks import DeliverySettings, DeliveryWorker, new_secret

ADMIN = Principal("bench-admin", frozenset({ADMIN_SCOPE}))
NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
DEBITS = 400
ROUNDS = 4


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def _round(store: SqlAccountStore, with_endpoint: bool, url: str) -> tuple[float, int]:
    """Debits/s of one writer, and how many events those debits emitted."""
    service = TokenService(
        store, PlanCatalog.default(), SettableClock(NOW), thresholds=range(1, 101)
    )
    subject = f"bench-{uuid.uuid4().hex[:12]}"
    quota = service.usage(Principal(subject)).token_quota
    step = max(1, quota // DEBITS)
    worker = None
    endpoint = None
    if with_endpoint:
        endpoint = WebhookEndpoint(f"wh_{uuid.uuid4().hex}", url, new_secret(), NOW)
        store.add_endpoint(endpoint)
        worker = DeliveryWorker(store, DeliverySettings(allow_private_targets=True))
        worker.start()
    before = store.events(after=0, limit=1).next_after
    started = time.perf_counter()
    for _ in range(DEBITS):
        service.consume(Principal(subject), step)
    took = time.perf_counter() - started
    if worker is not None and endpoint is not None:
        worker.stop()
        store.delete_endpoint(endpoint.id)
    emitted = sum(1 for e in _events_after(store, before) if e == subject)
    return DEBITS / took, emitted


def _events_after(store: EventStore, after: int) -> list[str]:
    subjects: list[str] = []
    while page := store.events(after=after, limit=1000).events:
        subjects += [e.subject for e in page]
        after = page[-1].position or after
    return subjects


def main() -> int:
    urls = {"sqlite": f"sqlite:///{Path(tempfile.mkdtemp()) / 'events.db'}"}
    for name, variable in (
        ("postgres", "TOKENPLANS_TEST_POSTGRES_URL"),
        ("mysql", "TOKENPLANS_TEST_MYSQL_URL"),
    ):
        if os.environ.get(variable):
            urls[name] = os.environ[variable]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
    print(f"{DEBITS} debits of 1 writer per round, {ROUNDS} rounds of each, A/B interleaved")
    for name, url in urls.items():
        engine = make_engine(url)
        upgrade_schema(engine)
        store = SqlAccountStore(engine, clock_source="process")
        results: dict[bool, list[float]] = {False: [], True: []}
        events = 0
        for _ in range(ROUNDS):
            for with_endpoint in (False, True):
                rate, emitted = _round(store, with_endpoint, hook)
                results[with_endpoint].append(rate)
                events = emitted
        a, b = statistics.median(results[False]), statistics.median(results[True])
        print(
            f"{name:9} A no endpoint {a:8.0f} debits/s | B endpoint + worker {b:8.0f} "
            f"debits/s | B/A {b / a:5.2f} | {events} events per {DEBITS} debits"
        )
        engine.dispose()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
