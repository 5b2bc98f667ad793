"""What metrics cost a request: the composed app with ``TOKENPLANS_METRICS`` on and off, in
the same run, over one SQLite file::

    python benchmarks/metrics.py              # 2,000 debits each way, interleaved
    python benchmarks/metrics.py --rounds 10

Each request is a ``POST /api/tokens/consume`` driven straight into the ASGI app (no
server, no client library: their cost would hide the difference), so the figures are the
app's own work: Python calls per request (cProfile; steady however busy the machine is)
and CPU microseconds per request (this process's CPU time, which other processes do not
inflate as they do the wall clock; the median of the rounds, which alternate between
the two apps).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# This folder's http.py would stand for the standard library's http (httpx imports it).
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).parent]

SECRET = "benchmark-secret-that-is-long-enough-0123456789abcdef"
PER_ROUND = 200


def _app(url: str, *, metrics: bool) -> Any:
    from tokenplans_adapters.main import Settings, build_app  # noqa: PLC0415

    settings = Settings.from_env(
        {
            "TOKENPLANS_DATABASE_URL": url,
            "TOKENPLANS_JWT_SECRET": SECRET,
            "TOKENPLANS_METRICS": "true" if metrics else "false",
            "TOKENPLANS_PLANS_FILE": str(_plans(Path(url.removeprefix("sqlite:///")).parent)),
        },
        env_file=None,
    )
    return build_app(settings)


def _plans(folder: Path) -> Path:
    plans = folder / "plans.json"
    plans.write_text(json.dumps({"big": {"price": 0, "tokens": 10**12}}))
    return plans


def _driver(app: Any, subject: str) -> Callable[[], Any]:
    """One consume request into ``app``, as a server would send it."""
    from tokenplans_adapters.jwt_identity import mint_token  # noqa: PLC0415

    token = mint_token(subject, secret=SECRET).encode()
    body = b'{"amount": 1}'
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/tokens/consume",
        "raw_path": b"/api/tokens/consume",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench"),
            (b"authorization", b"Bearer " + token),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }

    async def request() -> int:
        status = 0
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(dict(scope), receive, send)
        return status

    return request


async def _round(request: Callable[[], Any], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        status = await request()
        assert status == 200, status
    return (time.process_time() - started) / count


async def _calls(request: Callable[[], Any], count: int) -> float:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(count):
        await request()
    profile.disable()
    return pstats.Stats(profile).total_calls / count  # type: ignore[attr-defined]


async def main(rounds: int) -> None:
    from tokenplans_adapters.sql import upgrade_schema  # noqa: PLC0415

    folder = Path(tempfile.mkdtemp(prefix="tokenplans-metrics-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade_schema(url)
    apps = {"off": _app(url, metrics=False), "on": _app(url, metrics=True)}
    drivers = {name: _driver(app, f"bench-{name}") for name, app in apps.items()}
    for request in drivers.values():  # warm: statements compiled, rows present, labels made
        await _round(request, 50)
    calls = {name: await _calls(request, PER_ROUND) for name, request in drivers.items()}
    seconds: dict[str, list[float]] = {"off": [], "on": []}
    for number in range(rounds):
        order = ("off", "on") if number % 2 else ("on", "off")
        for name in order:
            seconds[name].append(await _round(drivers[name], PER_ROUND))
    off, on = (statistics.median(seconds[name]) * 1e6 for name in ("off", "on"))
    print(f"{'metrics':8} {'calls/request':>14} {'CPU us/request':>20}")
    for name, median in (("off", off), ("on", on)):
        print(f"{name:8} {calls[name]:14.0f} {median:20.0f}")
    print(
        f"on - off: {calls['on'] - calls['off']:+.0f} calls, {on - off:+.0f} us "
        f"({(on - off) / off:+.1%}) per request over {rounds} x {PER_ROUND} requests each"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    asyncio.run(main(parser.parse_args().rounds))
