"""HTTP throughput and latency of ``tokenplans serve``, next to a bare JWT-decoding endpoint.

Run ``python benchmarks/http.py`` (needs ``wrk`` on PATH: ``apt-get install wrk``). It
starts the real server (one uvicorn worker) on a fresh SQLite file and, when
``TOKENPLANS_TEST_POSTGRES_URL`` is set, on PostgreSQL; and, in the same run, a bare
Starlette app under the same uvicorn settings whose route decodes the bearer JWT with
PyJWT and returns fixed JSON (for POST, after parsing the JSON body): the floor any
JWT-authenticated Python endpoint pays (a second route decodes in the thread pool, to show
what one hop off the event loop costs). GET usage is compared with the GET floor, POST
consume with the POST floor. Both servers run in this venv under the same uvicorn, so
with uvloop and httptools installed (the ``server`` extra) both use them; the run prints
which event loop and HTTP parser were found.
``wrk`` drives each from its own process at 1, 16 and 64 connections; requests rotate over
64 subjects (64 accounts, each granted plenty of tokens first, so consume never runs
dry). It prints requests/s, p50 and p99 latency, non-2xx count, and each figure's ratio
to the bare endpoint at the same concurrency, and each tokenplans worker's peak RSS.
Total run time is about 1-2 minutes.

Options: ``--duration SECONDS`` per measurement (default 4), ``--concurrency 1,16,64``,
``--rounds N`` to repeat the whole sequence N times (servers interleaved, so a burst of
other load on the machine hits a round, not one side) and report each figure's best.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's ``http`` package, which uvicorn, httpx
# and Starlette import: run as a script, its folder would come first on sys.path and
# shadow it. Drop that folder before importing anything else.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx

from tokenplans import ADMIN_SCOPE
from tokenplans_adapters.jwt_identity import mint_token

SECRET = "benchmark-secret-that-is-long-enough-0123456789"
SUBJECTS = 64
GRANT = 10**12
START_TIMEOUT_S = 60

USAGE = ("GET", "/api/tokens/usage", "")
CONSUME = ("POST", "/api/tokens/consume", '{"amount": 1}')
BARE = ("GET", "/bare", "")
BARE_POST = ("POST", "/bare", '{"amount": 1}')
BARE_THREADED = ("GET", "/bare-threaded", "")

LUA = """
local tokens = {%(tokens)s}
local i = 0
local headers = {["Content-Type"] = "application/json"}
request = function()
  i = i + 1
  headers["Authorization"] = "Bearer " .. tokens[(i %% #tokens) + 1]
  return wrk.format("%(method)s", "%(path)s", headers, %(body)s)
end
"""


@dataclass(frozen=True)
class Result:
    target: str
    endpoint: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int


# -- servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running(
    command: Sequence[str], *, cwd: Path, env: dict[str, str], port: int
) -> Iterator[tuple[str, int]]:
    """Start ``command``, wait for ``/api/health`` on ``port``, stop it with SIGINT. Yields
    the URL and the process id (with one worker, uvicorn serves in that process)."""
    log = (cwd / f"server-{port}.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - our own server
        command, cwd=cwd, env={**os.environ, **env}, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise SystemExit(f"{command[0]} did not start:\n{log.name}")
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def tokenplans_server(database_url: str) -> tuple[list[str], dict[str, str], int]:
    port = free_port()
    script = str(Path(sys.executable).with_name("tokenplans"))
    command = [script, "serve", "--port", str(port), "--workers", "1"]
    env = {"TOKENPLANS_JWT_SECRET": SECRET, "TOKENPLANS_DATABASE_URL": database_url}
    return command, env, port


def bare_server() -> tuple[list[str], dict[str, str], int]:
    port = free_port()
    return [sys.executable, __file__, "--serve-bare", str(port)], {}, port


def serve_bare(port: int) -> None:
    """The baseline: Starlette + uvicorn (same log settings as ``tokenplans serve``), one
    route that decodes the bearer JWT and returns fixed JSON."""
    import jwt  # noqa: PLC0415 - only the bare server process needs these
    import uvicorn  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.concurrency import run_in_threadpool  # noqa: PLC0415
    from starlette.requests import Request  # noqa: PLC0415
    from starlette.responses import JSONResponse  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    fixed = {"plan": "basic", "token_quota": 1000, "token_used": 0, "remaining": 1000}

    async def bare(request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").partition(" ")[2]
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        if request.method == "POST":
            body = await request.json()
            return JSONResponse({**fixed, "subject": claims["sub"], "amount": body["amount"]})
        return JSONResponse({**fixed, "subject": claims["sub"]})

    async def bare_threaded(request: Request) -> JSONResponse:
        # The same, but decoding in the thread pool: the price of one hop off the loop.
        token = request.headers.get("authorization", "").partition(" ")[2]
        claims = await run_in_threadpool(jwt.decode, token, SECRET, algorithms=["HS256"])
        return JSONResponse({**fixed, "subject": claims["sub"]})

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/bare", bare, methods=["GET", "POST"]),
            Route("/bare-threaded", bare_threaded),
            Route("/api/health", health),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


# -- load -------------------------------------------------------------------------------


def tokens(prefix: str) -> list[str]:
    return [
        mint_token(f"{prefix}-{index}", secret=SECRET, ttl=timedelta(hours=2))
        for index in range(SUBJECTS)
    ]


def prepare_accounts(url: str, prefix: str) -> None:
    """Give every benchmark subject plenty of tokens, so consume measures debits, not 402s."""
    admin = mint_token("bench-admin", secret=SECRET, scopes=[ADMIN_SCOPE])
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}) as http:
        for index in range(SUBJECTS):
            answer = http.post(
                f"/api/admin/accounts/{prefix}-{index}/grant", json={"amount": GRANT}
            )
            answer.raise_for_status()


def wrk(
    url: str,
    endpoint: tuple[str, str, str],
    subject_tokens: list[str],
    *,
    connections: int,
    duration: int,
    workdir: Path,
) -> tuple[float, float, float, int, int]:
    method, path, body = endpoint
    script = workdir / f"{method}-{path.strip('/').replace('/', '-')}.lua"
    script.write_text(
        LUA
        % {
            "tokens": ", ".join(f'"{token}"' for token in subject_tokens),
            "method": method,
            "path": path,
            "body": json.dumps(body) if body else "nil",
        }
    )
    threads = min(connections, os.cpu_count() or 1, 2)
    output = subprocess.run(  # noqa: S603 - wrk, found on PATH
        [
            shutil.which("wrk") or "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return (
        float(_find(r"Requests/sec:\s+([\d.]+)", output)),
        _millis(_find(r"^\s+50%\s+(\S+)", output)),
        _millis(_find(r"^\s+99%\s+(\S+)", output)),
        int(_find(r"Non-2xx or 3xx responses:\s+(\d+)", output, "0")),
        sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output)),
    )


def _find(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        if default is not None:
            return default
        raise SystemExit(f"unexpected wrk output:\n{text}")
    return match.group(1)


def _millis(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


# -- the run ----------------------------------------------------------------------------


def measure(
    target: str,
    url: str,
    endpoints: Sequence[tuple[str, tuple[str, str, str]]],
    *,
    concurrency: Sequence[int],
    duration: int,
    workdir: Path,
) -> list[Result]:
    prefix = f"bench-{target}-{os.getpid()}-{int(time.time())}"
    subject_tokens = tokens(prefix)
    if target != "bare":
        prepare_accounts(url, prefix)
    results = []
    for name, endpoint in endpoints:
        wrk(
            url, endpoint, subject_tokens, connections=16, duration=1, workdir=workdir
        )  # warm-up: pools, caches, JIT-less
        for connections in concurrency:
            rps, p50, p99, non_2xx, errors = wrk(
                url,
                endpoint,
                subject_tokens,
                connections=connections,
                duration=duration,
                workdir=workdir,
            )
            results.append(Result(target, name, connections, rps, p50, p99, non_2xx, errors))
            print(
                f"  {target:8} {name:15} c={connections:<3} {rps:9.0f} req/s  "
                f"p50 {p50:7.2f} ms  p99 {p99:7.2f} ms",
                flush=True,
            )
    return results


def best_of(results: list[Result]) -> list[Result]:
    """Each measurement's best round (other load on the machine only ever slows one)."""
    best: dict[tuple[str, str, int], Result] = {}
    for r in results:
        key = (r.target, r.endpoint, r.connections)
        if key not in best or r.rps > best[key].rps:
            best[key] = r
    return list(best.values())


#: Which floor each endpoint is compared with.
FLOOR_OF = {"POST consume": "POST bare JWT"}


def report(results: list[Result]) -> None:
    floors = {(r.endpoint, r.connections): r.rps for r in results if r.target == "bare"}
    print()
    print(
        f"{'target':9}{'endpoint':16}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}{'errors':>8}{'vs bare':>9}"
    )
    for r in results:
        floor = floors.get((FLOOR_OF.get(r.endpoint, "GET bare JWT"), r.connections))
        ratio = r.rps / floor if floor else float("nan")
        print(
            f"{r.target:9}{r.endpoint:16}{r.connections:>6}{r.rps:>10.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{r.non_2xx:>9}{r.errors:>8}{ratio:>9.2f}"
        )
    print(
        "\nvs bare: requests/s as a fraction of the bare JWT-decoding Starlette endpoint at the"
        " same concurrency, measured in this run (POST consume: of the bare POST, which also"
        " parses the JSON body)."
    )


def peak_rss_mib(pid: int) -> int:
    """The process's peak resident memory so far (``VmHWM``), in MiB (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(_find(r"VmHWM:\s+(\d+) kB", status)) // 1024


def _found(module: str) -> str:
    """What uvicorn's ``auto`` settings pick: the module when installed, else the default."""
    try:
        __import__(module)
    except ImportError:
        return {"uvloop": "asyncio", "httptools": "h11"}[module]
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat every measurement this many times, servers interleaved; report the best",
    )
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("benchmarks/http.py needs wrk on PATH (apt-get install wrk)")
    concurrency = [int(c) for c in args.concurrency.split(",")]
    print(f"CPUs: {os.cpu_count()}; {args.duration:g} s per measurement; wrk in its own process")
    print(f"uvicorn's event loop: {_found('uvloop')}; HTTP parser: {_found('httptools')}")
    results: list[Result] = []
    peaks: dict[str, int] = {}
    for round_ in range(args.rounds):
        print(f"round {round_ + 1} of {args.rounds}", flush=True)
        with tempfile.TemporaryDirectory(prefix="tokenplans-bench-") as tmp:
            workdir = Path(tmp)
            command, env, port = bare_server()
            with running(command, cwd=workdir, env=env, port=port) as (url, _pid):
                results += measure(
                    "bare",
                    url,
                    [
                        ("GET bare JWT", BARE),
                        ("POST bare JWT", BARE_POST),
                        ("GET bare, 1 hop", BARE_THREADED),
                    ],
                    concurrency=concurrency,
                    duration=args.duration,
                    workdir=workdir,
                )
            databases = [("sqlite", f"sqlite:///{workdir / 'bench.sqlite3'}")]
            if os.environ.get("TOKENPLANS_TEST_POSTGRES_URL"):
                databases.append(("postgres", os.environ["TOKENPLANS_TEST_POSTGRES_URL"]))
            for target, database_url in databases:
                command, env, port = tokenplans_server(database_url)
                with running(command, cwd=workdir, env=env, port=port) as (url, pid):
                    results += measure(
                        target,
                        url,
                        [("GET usage", USAGE), ("POST consume", CONSUME)],
                        concurrency=concurrency,
                        duration=args.duration,
                        workdir=workdir,
                    )
                    peaks[target] = max(peaks.get(target, 0), peak_rss_mib(pid))
    report(best_of(results))
    print(
        "peak RSS of the worker after its loads: "
        + ", ".join(f"{target} {mib} MiB" for target, mib in peaks.items())
    )


if __name__ == "__main__":
    main()
