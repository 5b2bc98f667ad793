"""What every same-work floor shares: the Starlette app, the JWT check and the hot statements.

A floor does exactly the work tokenplans' hot endpoints must do, and nothing else: HS256
JWT -> subject (with a cache of verified tokens, as tokenplans has); ``GET
/api/tokens/usage`` = one primary-key read and the period's reset check; ``POST
/api/tokens/consume`` = one transaction with a conditional ``UPDATE`` (enough left, period
not over) and a ledger ``INSERT``. Storage runs in a few threads (one hop off the event
loop, each thread with its own connection, as many threads as tokenplans runs). A driver
module gives ``connect()`` and whether its database has ``UPDATE ... RETURNING``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET = "benchmark-secret-that-is-long-enough-0123456789"
#: Storage threads (``FLOOR_THREADS`` overrides): ``benchmarks/http.py`` gives each floor
#: as many as tokenplans runs on the same database, so both commit as many at once.
THREADS = int(os.environ.get("FLOOR_THREADS", "8"))
QUOTA, PERIOD_S = 1000, 30 * 86400
COLUMNS = "plan, token_quota, token_used, period_end"
READ = f"SELECT {COLUMNS} FROM floor_accounts WHERE subject = %s"  # noqa: S608 - constants
READ_AFTER = f"SELECT {COLUMNS}, version FROM floor_accounts WHERE subject = %s"  # noqa: S608
TABLES = (
    "CREATE TABLE floor_accounts (subject VARCHAR(255) PRIMARY KEY, plan VARCHAR(32) NOT NULL,"
    " token_quota BIGINT NOT NULL, token_used BIGINT NOT NULL, period_end BIGINT NOT NULL,"
    " version BIGINT NOT NULL)",
    "CREATE TABLE floor_ledger (subject VARCHAR(255) NOT NULL, version BIGINT NOT NULL,"
    " kind VARCHAR(16) NOT NULL, amount BIGINT NOT NULL, at BIGINT NOT NULL,"
    " token_used BIGINT NOT NULL, PRIMARY KEY (subject, version))",
)
UPDATE = (
    "UPDATE floor_accounts SET token_used = token_used + %s, version = version + 1"
    " WHERE subject = %s AND period_end > %s AND token_quota - token_used >= %s"
)
LEDGER = "INSERT INTO floor_ledger VALUES (%s, %s, 'consume', %s, %s, %s)"


class Floor:
    """The hot statements over one DB-API connection per storage thread."""

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        returning: bool,
        marker: str = "%s",
        begin: str = "BEGIN",
        one_writer: bool = False,
    ) -> None:
        self.connect, self.returning, self.marker, self.begin = connect, returning, marker, begin
        self.local = threading.local()
        # SQLite has one writer at a time: writers queue on a lock here rather than sleep
        # in SQLite's busy handler (as tokenplans' SQLite store does).
        self.writing = threading.Lock() if one_writer else contextlib.nullcontext()

    def sql(self, text: str) -> str:
        return text.replace("%s", self.marker)

    def cursor(self) -> Any:
        if not hasattr(self.local, "connection"):
            self.local.connection = self.connect()
        return self.local.connection.cursor()

    def create(self) -> None:
        cursor = self.cursor()
        for table in ("floor_ledger", "floor_accounts"):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in TABLES:
            cursor.execute(statement)

    def usage(self, subject: str) -> dict[str, Any]:
        cursor = self.cursor()
        cursor.execute(self.sql(READ), (subject,))
        row = cursor.fetchone()
        now = int(time.time())
        plan, quota, used, period_end = row or ("basic", QUOTA, 0, now + PERIOD_S)
        if period_end <= now:  # the reset check: a period over reads as a fresh one
            used, period_end = 0, now + PERIOD_S
        return _usage(subject, plan, quota, used, period_end)

    def consume(self, subject: str, amount: int) -> dict[str, Any] | None:
        """The debit, or ``None`` when too few are left (the account is then unchanged)."""
        with self.writing:
            return self._consume(subject, amount)

    def _consume(self, subject: str, amount: int) -> dict[str, Any] | None:
        cursor, now = self.cursor(), int(time.time())
        cursor.execute(self.begin)
        try:
            args = (amount, subject, now, amount)
            if self.returning:
                cursor.execute(self.sql(UPDATE + f" RETURNING {COLUMNS}, version"), args)
                row = cursor.fetchone()
            else:
                cursor.execute(self.sql(UPDATE), args)
                row = None
                if cursor.rowcount == 1:
                    cursor.execute(self.sql(READ_AFTER), (subject,))
                    row = cursor.fetchone()
            if row is None:
                cursor.execute("ROLLBACK")
                return None
            plan, quota, used, period_end, version = row
            cursor.execute(self.sql(LEDGER), (subject, version, amount, now, used))
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        return {**_usage(subject, plan, quota, used, period_end), "amount": amount}

    def grant(self, subject: str, amount: int) -> None:
        cursor = self.cursor()
        cursor.execute(self.sql("DELETE FROM floor_accounts WHERE subject = %s"), (subject,))
        cursor.execute(
            self.sql("INSERT INTO floor_accounts VALUES (%s, 'basic', %s, 0, %s, 1)"),
            (subject, QUOTA + amount, int(time.time()) + PERIOD_S),
        )


def _usage(subject: str, plan: str, quota: int, used: int, period_end: int) -> dict[str, Any]:
    remaining = max(0, quota - used)
    return {"plan": plan, "token_quota": quota, "token_used": used, "remaining": remaining,
            "period_end": period_end, "subject": subject}  # fmt: skip


def app(floor: Floor) -> Starlette:
    executor = ThreadPoolExecutor(THREADS)
    verified: dict[str, tuple[str, float]] = {}  # token -> (subject, expiry)

    def subject_of(request: Request) -> str | None:
        token = request.headers.get("authorization", "").partition(" ")[2]
        known = verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        try:
            claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            return None
        if len(verified) > 10_000:
            verified.clear()
        verified[token] = (claims["sub"], claims.get("exp", float("inf")))
        return str(claims["sub"])

    async def hop(call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, call, *args)

    async def usage(request: Request) -> Response:
        if (subject := subject_of(request)) is None:
            return JSONResponse({"error": "unauthorized"}, 401)
        return JSONResponse(await hop(floor.usage, subject))

    async def consume(request: Request) -> Response:
        if (subject := subject_of(request)) is None:
            return JSONResponse({"error": "unauthorized"}, 401)
        amount = json.loads(await request.body())["amount"]
        done = await hop(floor.consume, subject, amount)
        return (
            JSONResponse({"error": "insufficient tokens"}, 402)
            if done is None
            else JSONResponse(done)
        )

    async def grant(request: Request) -> Response:
        amount = json.loads(await request.body())["amount"]
        await hop(floor.grant, request.path_params["subject"], amount)
        return JSONResponse({"status": "ok"})

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    floor.create()
    return Starlette(routes=[
        Route("/api/tokens/usage", usage), Route("/api/tokens/consume", consume, methods=["POST"]),
        Route("/api/admin/accounts/{subject}/grant", grant, methods=["POST"]),
        Route("/api/health", health),
    ])  # fmt: skip


def serve(floor: Floor, port: int) -> None:
    uvicorn.run(app(floor), host="127.0.0.1", port=port, log_level="warning", access_log=False)
