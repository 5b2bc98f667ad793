"""HTTP throughput of ``tokenplans serve`` against same-work floors, in one run.

Run ``python benchmarks/http.py`` (needs ``wrk`` on PATH: ``apt-get install wrk``). For
SQLite (a fresh file), and for PostgreSQL and MariaDB when ``TOKENPLANS_TEST_POSTGRES_URL``
and ``TOKENPLANS_TEST_MYSQL_URL`` name empty databases, it starts, in turn, the same-work
floor of ``benchmarks/floors/`` (a minimal Starlette app doing exactly what the hot
endpoints must: JWT -> subject with a cache of verified tokens, GET usage = one
primary-key read with the reset check, POST consume = one transaction with a conditional
``UPDATE`` and a ledger ``INSERT``) and the real server (one uvicorn worker), and drives
each with ``wrk`` (requests rotate over 64 subjects, each granted plenty of tokens
first, so consume never runs dry). ``--against [NAME=]PATH`` (repeatable) also serves
another checkout's code (its ``src`` and ``adapters``) in the same rounds: a before and
after, or each step of a series, in one run.

Each server is pinned to one core with ``taskset`` (the last CPU; ``wrk`` gets the
others) where ``taskset`` exists and there are at least two CPUs: unpinned, a server
with many threads simply gets more of a shared machine than a single-threaded one.
Rounds interleave the servers, so a burst of other load hits a round, not one side.

Printed per server and endpoint: requests/s (best round), p99 (of that round), the
server process's CPU per request (user + system, from ``/proc/<pid>/stat``, median of
the rounds), the database's CPU per request (PostgreSQL: the backend processes of the
benchmark's database, sampled from ``/proc`` every 50 ms, so a backend living shorter
than that is missed; MariaDB: the whole server process listening on the URL's port, which
other clients of the server also use), the server's peak RSS after its loads,
connections opened per 1,000 requests (PostgreSQL: its exact
``pg_stat_database.sessions``; MariaDB: new connection ids of the database seen in the
process list, a lower bound), and tokenplans' share of its floor, by requests/s and by
CPU per request (the server's plus the database's). The CPU figures are what to compare
on a busy machine: requests/s move with whatever else runs, CPU per request much less.

Options: ``--duration SECONDS`` per measurement (default 5), ``--connections`` (64),
``--rounds`` (3), ``--databases sqlite,postgres,mysql``, ``--against PATH``, ``--checkout
PATH`` (the code served as "tokenplans": this checkout by default), ``--two-workers``
(also serve it with ``--workers 2`` on every CPU, as ``tokenplans-2w``, and print its
req/s and CPU per request over one worker's: with ``wrk`` and the database on the same
cores, CPU per request is what tells whether a second worker scales).
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
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
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
HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
TICKS_PER_S = os.sysconf("SC_CLK_TCK")

USAGE = ("GET", "/api/tokens/usage", "")
CONSUME = ("POST", "/api/tokens/consume", '{"amount": 1}')
HOLD_PAIR = ("POST", "/api/tokens/holds", "pair")
ENDPOINTS = (("GET usage", USAGE), ("POST consume", CONSUME))
#: tokenplans only (the floors have no holds): a reserve, then a settle of that hold.
HOLD_ENDPOINTS = (("hold pair", HOLD_PAIR),)

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


#: Reserves and settles: each thread reserves a new hold (its id names the subject's token),
#: and settles a hold whose reserve was answered whenever it has one.
PAIR_LUA = """
local tokens = {%(tokens)s}
local counter = 0
local open = {}
local prefix = ""
local headers = {["Content-Type"] = "application/json"}
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("prefix", "%(nonce)s-" .. threads)
end
init = function(args)
  prefix = wrk.thread:get("prefix")
end
request = function()
  local hold = table.remove(open)
  if hold ~= nil then
    local index = tonumber(string.match(hold, "-(%%d+)$"))
    headers["Authorization"] = "Bearer " .. tokens[index]
    return wrk.format("POST", "/api/tokens/holds/" .. hold .. "/settle", headers, '{"amount": 1}')
  end
  counter = counter + 1
  local index = (counter %% #tokens) + 1
  headers["Authorization"] = "Bearer " .. tokens[index]
  local id = prefix .. "-" .. counter .. "-" .. index
  return wrk.format("POST", "/api/tokens/holds", headers,
    '{"amount": 2, "hold_id": "' .. id .. '"}')
end
response = function(status, headers, body)
  if status == 201 then
    table.insert(open, string.match(body, '"hold_id":"([^"]+)"'))
  end
end
"""


@dataclass(frozen=True)
class Result:
    database: str
    server: str  # "floor", "tokenplans", or the name of another checkout
    endpoint: str
    rps: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int
    cpu_ms: float  # the server process's CPU per request
    db_cpu_ms: float | None  # the database's CPU per request
    connects_per_1000: float | None


# -- servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cores() -> tuple[str | None, str | None]:
    """The CPU list for the server and for wrk, or ``None`` (no pinning)."""
    count = os.cpu_count() or 1
    if shutil.which("taskset") is None or count < 2:
        return None, None
    return str(count - 1), f"0-{count - 2}"


def pinned(command: Sequence[str], cpus: str | None) -> list[str]:
    return list(command) if cpus is None else ["taskset", "-c", cpus, *command]


@contextmanager
def running(
    command: Sequence[str], *, cwd: Path, env: dict[str, str], port: int
) -> Iterator[tuple[str, int]]:
    """Start ``command``, wait for ``/api/health`` on ``port``, stop it with SIGINT. Yields
    the URL and the process id (``taskset`` execs the command: the same process)."""
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
                raise SystemExit(f"{command} did not start:\n{Path(log.name).read_text()}")
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


def tokenplans_server(
    database_url: str, checkout: Path, cpus: str | None, workers: int = 1
) -> tuple[list[str], dict[str, str]]:
    """``tokenplans serve`` running ``checkout``'s code (its src and adapters first)."""
    port = free_port()
    command = [sys.executable, "-m", "tokenplans_adapters.console", "serve", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    env = {
        "TOKENPLANS_JWT_SECRET": SECRET,
        "TOKENPLANS_DATABASE_URL": database_url,
        "PYTHONPATH": f"{checkout / 'src'}{os.pathsep}{checkout / 'adapters'}",
        "PORT": str(port),
    }
    return pinned(command, cpus), env


#: The name of tokenplans served by two worker processes, on every CPU (``--two-workers``).
TWO_WORKERS = "tokenplans-2w"

FLOORS = {"sqlite": "floor_sqlite.py", "postgres": "floor_postgres.py", "mysql": "floor_mysql.py"}
#: Storage threads of each floor: as many as ``tokenplans serve`` runs by default there.
FLOOR_THREADS = {"sqlite": 8, "postgres": 10, "mysql": 8}


def floor_server(database: str, target: str, cpus: str | None) -> tuple[list[str], dict[str, str]]:
    port = free_port()
    if database == "mysql":
        target = target.partition("?")[0]
    command = [sys.executable, str(HERE / "floors" / FLOORS[database]), str(port), target]
    return pinned(command, cpus), {"PORT": str(port), "FLOOR_THREADS": str(FLOOR_THREADS[database])}


# -- the database's side ----------------------------------------------------------------


def cpu_ticks(pid: int) -> int:
    """User + system CPU of ``pid`` and of its live child processes (a server's workers)
    so far, in clock ticks (all their threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])
    for child in _children(pid):
        with contextlib.suppress(OSError):
            ticks += cpu_ticks(child)
    return ticks


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


class DatabaseWatch:
    """The database's CPU and the connections opened to it while a load runs."""

    def __init__(self, database: str, url: str) -> None:
        self.database, self.url = database, url
        self.name = url.rpartition("/")[2].partition("?")[0]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: dict[int, tuple[int, int]] = {}  # PostgreSQL backend -> (first, last)
        self._ids: set[int] = set()  # MariaDB connection ids
        self._server_pid: int | None = None

    def __enter__(self) -> DatabaseWatch:
        self._start_sessions = self._sessions()
        self._start_server = self._server_ticks()
        self._initial_ids = self._mysql_ids()
        self._ids = set(self._initial_ids)
        self._sample(first=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._sample()
        self.cpu_ticks = (
            sum(last - first for first, last in self._seen.values())
            if self.database == "postgres"
            else self._server_ticks() - self._start_server
        )
        sessions = self._sessions()
        self.connects = (
            sessions - self._start_sessions - 1  # the session that read the first count
            if sessions is not None and self._start_sessions is not None
            else len(self._ids - self._initial_ids)
        )

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def _sample(self, *, first: bool = False) -> None:
        if self.database == "mysql":
            self._ids |= self._mysql_ids()
            return
        if self.database != "postgres":
            return
        for pid in _postgres_backends(self.name):
            try:
                ticks = cpu_ticks(pid)
            except OSError:
                continue
            start = self._seen.get(pid, (ticks if first else 0, 0))[0]
            self._seen[pid] = (start, ticks)

    def _sessions(self) -> int | None:
        if self.database != "postgres":
            return None
        import psycopg  # noqa: PLC0415

        plain = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as connection:
            row = connection.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = %s", (self.name,)
            ).fetchone()
        return None if row is None else int(row[0])

    def _mysql_ids(self) -> set[int]:
        if self.database != "mysql":
            return set()
        import pymysql  # noqa: PLC0415
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        url = make_url(self.url)
        connection = pymysql.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 3306,
            user=url.username or "root",
            password=url.password or "",
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM information_schema.processlist WHERE db = %s", (self.name,)
                )
                return {int(row[0]) for row in cursor.fetchall()}
        finally:
            connection.close()

    def _server_ticks(self) -> int:
        """CPU of the MariaDB server the URL names: the process listening on its port."""
        if self.database != "mysql":
            return 0
        if self._server_pid is None:
            from sqlalchemy.engine import make_url  # noqa: PLC0415

            port = make_url(self.url).port or 3306
            listing = subprocess.run(  # noqa: S603
                ["ss", "-Hltnp", f"sport = :{port}"],  # noqa: S607 - iproute2's ss
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            found = re.search(r"pid=(\d+)", listing)
            if found is None:
                raise SystemExit(f"no process listens on port {port} (ss -ltnp)")
            self._server_pid = int(found.group(1))
        return cpu_ticks(self._server_pid)


def _processes() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdecimal()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _postgres_backends(database: str) -> list[int]:
    """The PostgreSQL backends connected to ``database`` (their process titles say so)."""
    found = []
    for pid in _processes():
        if _comm(pid) != "postgres":
            continue
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        # "postgres: [cluster: ]user database host(port) state"
        words = title.split()
        if words[:1] == ["postgres:"] and len(words) > 1 and words[1].endswith(":"):
            del words[1]
        if len(words) >= 3 and words[0] == "postgres:" and words[2] == database:
            found.append(pid)
    return found


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


@dataclass(frozen=True)
class Wrk:
    rps: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int


def wrk(
    url: str,
    endpoint: tuple[str, str, str],
    subject_tokens: list[str],
    *,
    connections: int,
    duration: float,
    workdir: Path,
    cpus: str | None,
) -> Wrk:
    method, path, body = endpoint
    script = workdir / f"{method}-{path.strip('/').replace('/', '-')}.lua"
    listed = ", ".join(f'"{token}"' for token in subject_tokens)
    if endpoint == HOLD_PAIR:
        script.write_text(PAIR_LUA % {"tokens": listed, "nonce": f"h{time.time_ns()}"})
    else:
        body_lua = json.dumps(body) if body else "nil"
        script.write_text(
            LUA % {"tokens": listed, "method": method, "path": path, "body": body_lua}
        )
    threads = min(connections, 2)
    command = [
        shutil.which("wrk") or "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(  # noqa: S603 - wrk, found on PATH
        pinned(command, cpus), capture_output=True, text=True, check=True
    ).stdout
    return Wrk(
        float(_find(r"Requests/sec:\s+([\d.]+)", output)),
        _millis(_find(r"^\s+99%\s+(\S+)", output)),
        int(_find(r"(\d+) requests in", output)),
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
    database: str,
    server: str,
    url: str,
    pid: int,
    database_url: str,
    *,
    connections: int,
    duration: float,
    workdir: Path,
    cpus: str | None,
) -> list[Result]:
    prefix = f"bench-{server}-{os.getpid()}-{time.monotonic_ns()}"
    subject_tokens = tokens(prefix)
    prepare_accounts(url, prefix)
    results = []
    for name, endpoint in ENDPOINTS + (() if server == "floor" else HOLD_ENDPOINTS):
        # Warm-up: pools, caches, the verified tokens.
        wrk(url, endpoint, subject_tokens, connections=16, duration=1, workdir=workdir, cpus=cpus)
        before = cpu_ticks(pid)
        with DatabaseWatch(database, database_url) as watch:
            run = wrk(
                url,
                endpoint,
                subject_tokens,
                connections=connections,
                duration=duration,
                workdir=workdir,
                cpus=cpus,
            )
        cpu_ms = (cpu_ticks(pid) - before) * 1000 / TICKS_PER_S / max(run.requests, 1)
        db_cpu = (
            None
            if database == "sqlite"
            else watch.cpu_ticks * 1000 / TICKS_PER_S / max(run.requests, 1)
        )
        connects = None if database == "sqlite" else watch.connects * 1000 / max(run.requests, 1)
        result = Result(
            database,
            server,
            name,
            run.rps,
            run.p99_ms,
            run.requests,
            run.non_2xx,
            run.errors,
            cpu_ms,
            db_cpu,
            connects,
        )
        results.append(result)
        print(f"  {_line(result)}", flush=True)
    print(f"  {database:8} {server:12} peak RSS {peak_rss_mib(pid)} MiB", flush=True)
    return results


def peak_rss_mib(pid: int) -> int:
    """The process's peak resident memory so far (``VmHWM``), in MiB (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(_find(r"VmHWM:\s+(\d+) kB", status)) // 1024


def _line(r: Result) -> str:
    db = "" if r.db_cpu_ms is None else f" + {r.db_cpu_ms:.3f} db"
    connects = "" if r.connects_per_1000 is None else f"  {r.connects_per_1000:.1f} conn/1000"
    bad = f"  non-2xx {r.non_2xx} errors {r.errors}" if r.non_2xx or r.errors else ""
    return (
        f"{r.database:8} {r.server:12} {r.endpoint:13} {r.rps:7.0f} req/s  p99 {r.p99_ms:6.1f} ms"
        f"  cpu {r.cpu_ms:.3f}{db} ms/req{connects}{bad}"
    )


def summary(results: list[Result]) -> list[dict[str, object]]:
    """Per database, server and endpoint: the best round's req/s and p99, the median CPU."""
    keys = sorted({(r.database, r.server, r.endpoint) for r in results}, key=_order)
    rows = []
    for key in keys:
        runs = [r for r in results if (r.database, r.server, r.endpoint) == key]
        best = max(runs, key=lambda r: r.rps)
        db = [r.db_cpu_ms for r in runs if r.db_cpu_ms is not None]
        connects = [r.connects_per_1000 for r in runs if r.connects_per_1000 is not None]
        rows.append(
            {
                "database": key[0],
                "server": key[1],
                "endpoint": key[2],
                "rps": best.rps,
                "p99_ms": best.p99_ms,
                "cpu_ms": statistics.median(r.cpu_ms for r in runs),
                "db_cpu_ms": statistics.median(db) if db else None,
                "connects_per_1000": statistics.median(connects) if connects else None,
                "non_2xx": sum(r.non_2xx for r in runs),
                "errors": sum(r.errors for r in runs),
            }
        )
    return rows


#: The order the report lists servers in: the floor, the other checkouts, this one.
SERVER_ORDER: tuple[str, ...] = ("floor", "against", "tokenplans")


def _order(key: tuple[str, str, str]) -> tuple[int, str, int]:
    databases = ("sqlite", "postgres", "mysql")
    return databases.index(key[0]), key[2], SERVER_ORDER.index(key[1])


def report(rows: list[dict[str, object]]) -> None:
    floors = {(r["database"], r["endpoint"]): r for r in rows if r["server"] == "floor"}
    print()
    print(
        f"{'database':9}{'endpoint':14}{'server':13}{'req/s':>8}{'p99 ms':>8}{'cpu ms':>8}"
        f"{'db ms':>8}{'conn/1k':>8}{'share':>7}{'cpu share':>10}"
    )
    for r in rows:
        floor = floors.get((r["database"], r["endpoint"]))
        share = cpu_share = float("nan")
        if floor is not None:
            share = float(r["rps"]) / float(floor["rps"])  # type: ignore[arg-type]
            cpu_share = _total(floor) / _total(r)
        db = "-" if r["db_cpu_ms"] is None else f"{r['db_cpu_ms']:.3f}"
        conn = "-" if r["connects_per_1000"] is None else f"{r['connects_per_1000']:.1f}"
        print(
            f"{r['database']:9}{r['endpoint']:14}{r['server']:13}{r['rps']:>8.0f}"
            f"{r['p99_ms']:>8.1f}{r['cpu_ms']:>8.3f}{db:>8}{conn:>8}{share:>7.2f}{cpu_share:>10.2f}"
        )
        if r["non_2xx"] or r["errors"]:
            print(f"{'':23}non-2xx {r['non_2xx']}, socket errors {r['errors']}")
    consumes = {(r["database"], r["server"]): r for r in rows if r["endpoint"] == "POST consume"}
    for r in rows:
        consume = consumes.get((r["database"], r["server"]))
        if r["endpoint"] != "hold pair" or consume is None:
            continue
        by_cpu = 2 * _total(r) / _total(consume)
        by_rate = 2 * float(consume["rps"]) / float(r["rps"])  # type: ignore[arg-type]
        print(
            f"{r['database']:9}{r['server']:13} a reserve + settle pair costs {by_cpu:.2f}"
            f" consumes of CPU ({by_rate:.2f} by req/s)"
        )
    ones = {(r["database"], r["endpoint"]): r for r in rows if r["server"] == "tokenplans"}
    for r in rows:
        one = ones.get((r["database"], r["endpoint"]))
        if r["server"] != TWO_WORKERS or one is None:
            continue
        rate = float(r["rps"]) / float(one["rps"])  # type: ignore[arg-type]
        print(
            f"{r['database']:9}{r['endpoint']:14} two workers: {rate:.2f}x one worker's req/s,"
            f" CPU per request {_total(r) / _total(one):.2f}x (server + database)"
        )
    print(
        "\nreq/s and p99: the best round; cpu ms: the server process's CPU per request, db"
        " ms: the database's (medians of the rounds); conn/1k: connections opened per 1,000"
        " requests; share: req/s over the floor's in this run; cpu share: the floor's CPU"
        " per request (server + database) over this server's."
    )


def _total(row: dict[str, object]) -> float:
    return float(row["cpu_ms"]) + float(row["db_cpu_ms"] or 0.0)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="rounds, servers interleaved")
    parser.add_argument("--databases", default="sqlite,postgres,mysql")
    parser.add_argument("--servers", default="floor,tokenplans", help="floor,tokenplans")
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="another checkout to serve in the same rounds (repeatable; NAME labels it)",
    )
    parser.add_argument(
        "--checkout", type=Path, default=CHECKOUT, help="the code 'tokenplans' serves (this one)"
    )
    parser.add_argument("--json", type=Path, help="also write the summary rows here")
    parser.add_argument(
        "--two-workers",
        action="store_true",
        help="also serve tokenplans with two worker processes on every CPU ('tokenplans-2w')",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("benchmarks/http.py needs wrk on PATH (apt-get install wrk)")
    server_cpus, wrk_cpus = cores()
    databases = [("sqlite", "")]
    for name, variable in (
        ("postgres", "TOKENPLANS_TEST_POSTGRES_URL"),
        ("mysql", "TOKENPLANS_TEST_MYSQL_URL"),
    ):
        if os.environ.get(variable):
            databases.append((name, os.environ[variable]))
    wanted = args.databases.split(",")
    databases = [(name, url) for name, url in databases if name in wanted]
    servers: list[tuple[str, Path | None]] = [
        (name, args.checkout.resolve() if name == "tokenplans" else None)
        for name in args.servers.split(",")
    ]
    for index, against in enumerate(args.against):
        name, _, path = against.rpartition("=")
        servers.insert(1 + index, (name or "against", Path(path).resolve()))
    if args.two_workers:
        servers.append((TWO_WORKERS, args.checkout.resolve()))
    global SERVER_ORDER  # noqa: PLW0603 - the report's order of servers
    SERVER_ORDER = tuple(name for name, _ in servers)
    print(
        f"CPUs: {os.cpu_count()}; server pinned to CPU {server_cpus}, wrk to {wrk_cpus}; "
        f"{args.connections} connections; {args.duration:g} s per measurement; "
        f"load average at start {_load()}",
        flush=True,
    )
    results: list[Result] = []
    for round_ in range(args.rounds):
        print(f"round {round_ + 1} of {args.rounds} (load average {_load()})", flush=True)
        with tempfile.TemporaryDirectory(prefix="tokenplans-bench-") as tmp:
            workdir = Path(tmp)
            for database, url in databases:
                for server, checkout in servers:
                    target = url or f"sqlite:///{workdir / f'{server}.sqlite3'}"
                    if checkout is None:
                        floor_target = url or str(workdir / "floor.sqlite3")
                        command, env = floor_server(database, floor_target, server_cpus)
                    elif server == TWO_WORKERS:
                        every_cpu = None if server_cpus is None else f"0-{server_cpus}"
                        command, env = tokenplans_server(target, checkout, every_cpu, workers=2)
                    else:
                        command, env = tokenplans_server(target, checkout, server_cpus)
                    port = int(env.pop("PORT"))
                    with running(command, cwd=workdir, env=env, port=port) as (http_url, pid):
                        results += measure(
                            database,
                            server,
                            http_url,
                            pid,
                            url,
                            connections=args.connections,
                            duration=args.duration,
                            workdir=workdir,
                            cpus=wrk_cpus,
                        )
    rows = summary(results)
    report(rows)
    print(f"load average at the end: {_load()}")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
