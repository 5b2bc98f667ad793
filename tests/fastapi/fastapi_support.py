"""A host FastAPI app with tokenplans mounted at ``/billing`` and host routes that use its
dependencies, authenticated with real JWTs (so an expired token can be tested).

Host routes: ``/health`` (public), ``/me`` (any caller), ``/ops`` (admins),
``/summarise`` (charges a fixed 100 tokens), ``/chat`` (charges what the body asks for,
once per ``Idempotency-Key``), ``/outage`` (a core error raised in a host route).

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at
run time, and ``Depends(tp.charge(...))`` names a local.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Header
from pydantic import BaseModel

from tokenplans import (
    ADMIN_SCOPE,
    AccountStore,
    DebitReceipt,
    PlanCatalog,
    Pricer,
    Principal,
    StorageUnavailableError,
    TokenService,
)
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.fastapi import TokenplansDependencies, mount_tokenplans
from tokenplans_adapters.http import create_app
from tokenplans_adapters.jwt_identity import JwtIdentity

SECRET = "fastapi-host-secret-0123456789abcdef-0123456789"
NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)


def token(subject: str, *, admin: bool = False, expires: datetime | None = None) -> str:
    claims: dict[str, Any] = {
        "sub": subject,
        "exp": int((expires or datetime.now(UTC) + timedelta(hours=1)).timestamp()),
    }
    if admin:
        claims["scope"] = ADMIN_SCOPE
    return jwt.encode(claims, SECRET, algorithm="HS256")


def bearer(subject: str, **options: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(subject, **options)}"}


class ChatRequest(BaseModel):
    prompt: str
    max_tokens: int


def chat_cost(body: ChatRequest) -> int:
    return body.max_tokens


def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> str | None:
    return key


def build_host(
    store: AccountStore | None = None,
    *,
    pricer: Pricer | None = None,
) -> tuple[FastAPI, TokenplansDependencies]:
    """The host app and its tokenplans dependencies (one credit a token without ``pricer``)."""
    service = TokenService(
        InMemoryStore() if store is None else store,
        PlanCatalog.default(),
        SettableClock(NOW),
        pricer=pricer,
    )
    host = FastAPI(title="host app")
    tp = mount_tokenplans(host, create_app(service, JwtIdentity(secret=SECRET)), prefix="/billing")
    ran: list[str] = []
    host.state.ran = ran

    @host.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @host.get("/me")
    async def me(principal: Annotated[Principal, Depends(tp.current_principal)]) -> dict[str, str]:
        return {"subject": principal.subject}

    @host.get("/ops")
    def ops(principal: Annotated[Principal, Depends(tp.admin_principal)]) -> dict[str, str]:
        return {"admin": principal.subject}

    @host.post("/summarise")
    async def summarise(
        receipt: Annotated[DebitReceipt, Depends(tp.charge(100))],
    ) -> dict[str, int]:
        ran.append("summarise")
        return {"remaining": receipt.usage.remaining}

    @host.post("/chat")
    async def chat(
        body: ChatRequest,
        receipt: Annotated[
            DebitReceipt, Depends(tp.charge(chat_cost, idempotency_key=idempotency_key))
        ],
    ) -> dict[str, Any]:
        ran.append("chat")
        return {"reply": body.prompt[::-1], "charged": receipt.amount, "replayed": receipt.replayed}

    @host.get("/outage")
    async def outage() -> None:
        raise StorageUnavailableError("connection refused to db.internal:5432 as app")

    return host, tp


async def stream_then_hang_up(
    app: Any, path: str, headers: dict[str, str], *, after_chunks: int, json: Any = None
) -> list[bytes]:
    """POST ``path`` to ``app`` as a server would, and hang up (``http.disconnect``) once
    ``after_chunks`` body chunks arrived; the chunks received. A transport such as httpx's
    ASGITransport reads the whole body before the caller sees any of it, so it cannot
    leave mid-stream; this drives the ASGI calls directly."""
    import asyncio  # noqa: PLC0415
    import json as json_module  # noqa: PLC0415

    json_text = json_module.dumps(json)
    if json is not None:
        headers = {**headers, "Content-Type": "application/json"}
    hung_up = asyncio.Event()
    received: list[bytes] = []
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            body = b"" if json is None else json_text.encode()
            return {"type": "http.request", "body": body, "more_body": False}
        await hung_up.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            received.append(message["body"])
            if len(received) >= after_chunks:
                hung_up.set()
                await asyncio.sleep(0.05)  # the server notices while it sends

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return received
