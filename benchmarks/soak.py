"""A long mixed load on the real server, printing each worker's memory as it goes.

Does a worker's memory level off, or keep growing? ``tokenplans serve --workers 2`` on a
server database (MariaDB by default: the URL in ``TOKENPLANS_TEST_MYSQL_URL``), eight
client threads repeating a usage read, a debit, a hold placed and settled and a ledger
page, for ``--minutes`` (30 by default). Every ``--every`` seconds it prints each worker's
resident memory (``VmRSS``) and the requests done; at the end, how much each worker grew
in each third of the run. Memory that levels off grows less in each third than in the
one before, and little in the last::

    python benchmarks/soak.py --minutes 30
    python benchmarks/soak.py --minutes 2 --database-url sqlite:////tmp/soak.db
"""

from __future__ import annotations

import sys
from pathlib import Path

# This folder holds http.py, which would shadow the standard library's http (httpx and
# PyJWT import it) if it came first on sys.path, as it does for a script run from here.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import importlib.util
import itertools
import os
import threading
import time
import uuid
from datetime import timedelta

import httpx

from tokenplans import ADMIN_SCOPE
from tokenplans_adapters.jwt_identity import mint_token

THREADS = 8
SUBJECTS = 200
GRANT = 10**9


def _http_benchmark() -> object:
    """benchmarks/http.py, for its server harness (not importable as ``http``, which is
    the standard library's)."""
    spec = importlib.util.spec_from_file_location("bench_http", Path(__file__).with_name("http.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def workers_of(parent: int) -> list[int]:
    """The supervisor's worker processes (spawned children; not its resource tracker)."""
    found = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in command and b"resource_tracker" not in command:
                found.append(int(child))
    return sorted(found)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Tally:
    """What the client threads did, and the event that stops them."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.done = 0
        self.failed = 0


def load(url: str, prefix: str, secret: str, tally: Tally) -> None:
    """One client thread's loop: usage, a debit, a hold and its settle, a ledger page."""
    index = threading.get_ident() % SUBJECTS
    with httpx.Client(base_url=url, timeout=30) as http:
        while not tally.stop.is_set():
            index = (index + 1) % SUBJECTS
            token = mint_token(f"{prefix}-{index}", secret=secret, ttl=timedelta(hours=2))
            me = {"Authorization": f"Bearer {token}"}
            answers = [
                http.get("/api/tokens/usage", headers=me),
                http.post("/api/tokens/consume", headers=me, json={"amount": 1}),
            ]
            held = http.post("/api/tokens/holds", headers=me, json={"amount": 5})
            answers.append(held)
            if held.status_code == 201:
                hold_id = held.json()["hold_id"]
                answers.append(
                    http.post(f"/api/tokens/holds/{hold_id}/settle", headers=me, json={"amount": 3})
                )
            answers.append(http.get("/api/tokens/ledger?limit=20", headers=me))
            tally.done += len(answers)  # a rough count: += from threads may lose one
            tally.failed += sum(answer.status_code >= 500 for answer in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--every", type=float, default=60, help="seconds between samples")
    parser.add_argument("--database-url", default=os.environ.get("TOKENPLANS_TEST_MYSQL_URL"))
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("give --database-url or set TOKENPLANS_TEST_MYSQL_URL")
    bench = _http_benchmark()
    port = bench.free_port()  # type: ignore[attr-defined]
    command, env, _ = bench.tokenplans_server(args.database_url)  # type: ignore[attr-defined]
    command = [*command[:-2], "--workers", "2"]
    command[command.index("--port") + 1] = str(port)
    prefix = f"soak-{uuid.uuid4().hex[:8]}"
    secret: str = bench.SECRET  # type: ignore[attr-defined]  # the server's, set by it
    with bench.running(command, cwd=Path.cwd(), env=env, port=port) as (url, parent):  # type: ignore[attr-defined]
        admin = mint_token("soak-admin", secret=secret, scopes=[ADMIN_SCOPE])
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}) as http:
            for index in range(SUBJECTS):
                http.post(f"/api/admin/accounts/{prefix}-{index}/grant", json={"amount": GRANT})
        tally = Tally()
        threads = [
            threading.Thread(target=load, args=(url, prefix, secret, tally)) for _ in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        samples: list[tuple[float, list[float]]] = []
        started = time.monotonic()
        print("| minute | worker RSS (MiB) | requests | 5xx |")
        print("|---|---|---|---|")
        try:
            while (elapsed := time.monotonic() - started) < args.minutes * 60:
                pids = workers_of(parent)
                sizes = [rss_mib(pid) for pid in pids]
                samples.append((elapsed, sizes))
                shown = " / ".join(f"{size:.0f}" for size in sizes)
                print(
                    f"| {elapsed / 60:.1f} | {shown} | {tally.done:,} | {tally.failed} |",
                    flush=True,
                )
                time.sleep(args.every)
        finally:
            tally.stop.set()
            for thread in threads:
                thread.join()
    thirds = [samples[0], samples[len(samples) // 3], samples[2 * len(samples) // 3], samples[-1]]
    growth = [
        [after - before for before, after in zip(a[1], b[1], strict=False)]
        for a, b in itertools.pairwise(thirds)
    ]
    print("\ngrowth per third of the run (MiB, each worker):")
    for number, grew in enumerate(growth, start=1):
        print(f"  third {number}: " + " / ".join(f"{size:+.1f}" for size in grew))


if __name__ == "__main__":
    main()
