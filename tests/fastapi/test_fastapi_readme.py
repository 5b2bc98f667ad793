"""The FastAPI examples run as written, so they cannot drift: docs/fastapi.md's chat app
and Starlette host, and the README's short FastAPI example."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from doc_blocks import DOCS, README, first_fenced
from fastapi.testclient import TestClient
from fastapi_support import stream_then_hang_up
from openapi_spec_validator import validate

GUIDE = DOCS / "fastapi.md"
SECRET = "readme-example-secret-0123456789abcdef-0123456789"


def examples() -> list[str]:
    """docs/fastapi.md's chat app ("Inside FastAPI") and its Starlette host."""
    return [
        first_fenced(GUIDE, "python", under="## Inside FastAPI"),
        first_fenced(GUIDE, "python", under="## A Starlette host"),
    ]


def _run(source: str, namespace: dict[str, Any], path: Path = GUIDE) -> None:
    # dont_inherit: this module's `from __future__ import annotations` must not reach the
    # example, which (like a user's main.py) has none.
    code = compile(source, str(path), "exec", dont_inherit=True)
    exec(code, namespace)  # noqa: S102 - our own documentation


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.chdir(tmp_path)  # the example's sqlite:///tokenplans.db lands here
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", SECRET)
    namespace: dict[str, Any] = {"__name__": "main"}
    _run(examples()[0], namespace)
    yield namespace
    namespace["engine"].dispose()


def _alice() -> dict[str, str]:
    claims = {"sub": "alice", "exp": datetime.now(UTC) + timedelta(hours=1)}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


def test_the_chat_route_debits_what_the_model_used(example: dict[str, Any]) -> None:
    client = TestClient(example["app"])
    headers = {**_alice(), "Idempotency-Key": "chat-1"}

    answer = client.post("/chat", headers=headers, json={"prompt": "hello", "max_tokens": 10})
    retry = client.post("/chat", headers=headers, json={"prompt": "other", "max_tokens": 10})

    assert answer.json() == {"reply": "HELLO", "used": 10, "remaining": 990}
    # The same key never reaches the endpoint again: no second model call, no charge.
    assert retry.status_code == 409
    assert retry.json()["error"] == "already processed"
    assert (retry.json()["hold_id"], retry.json()["settled"]) == ("chat-1", 10)
    usage = client.get("/billing/api/tokens/usage", headers=_alice()).json()
    assert usage["token_used"] == 10
    ledger = client.get("/billing/api/tokens/ledger", headers=_alice()).json()["entries"]
    settled, placed = ledger[:2]
    assert (placed["kind"], placed["hold_id"], placed["amount"]) == ("hold_placed", "chat-1", 15)
    assert placed["usage"]["output_tokens"] == 10  # the estimate: max_tokens of answer
    assert (settled["kind"], settled["credits"], settled["usage"]["model"]) == (
        "hold_settled",
        10,
        "gpt-4o",
    )


def test_the_client_cannot_pick_the_model(example: dict[str, Any]) -> None:
    client = TestClient(example["app"])

    client.post("/chat", headers=_alice(), json={"prompt": "hi", "model": "cheap-model"})

    ledger = client.get("/billing/api/tokens/ledger", headers=_alice()).json()["entries"]
    assert {entry["usage"]["model"] for entry in ledger if entry["usage"]} == {"gpt-4o"}


def test_a_stream_is_charged_what_it_sent_even_when_the_client_hangs_up(
    example: dict[str, Any],
) -> None:
    client = TestClient(example["app"])
    prompt = "one two three four five"

    streamed = client.post("/chat/stream", headers=_alice(), json={"prompt": prompt})
    usage = client.get("/billing/api/tokens/usage", headers=_alice()).json()

    assert streamed.text.split() == prompt.upper().split()
    # Unit prices: the prompt's 23 characters in, five words out.
    assert (usage["token_used"], usage["token_held"]) == (23 + 5, 0)

    asyncio.run(
        stream_then_hang_up(
            example["app"], "/chat/stream", _alice(), after_chunks=2, json={"prompt": prompt}
        )
    )
    after = client.get("/billing/api/tokens/usage", headers=_alice()).json()
    assert after["token_held"] == 0
    assert 23 + 2 <= after["token_used"] - usage["token_used"] < 23 + 5  # paid what it got


def test_an_unaffordable_chat_is_the_402_and_the_model_is_not_called(
    example: dict[str, Any],
) -> None:
    client = TestClient(example["app"])

    refused = client.post("/chat", headers=_alice(), json={"prompt": "hi", "max_tokens": 999})
    unauthenticated = client.post("/chat", json={"prompt": "hi"})

    assert refused.status_code == 402
    assert refused.json() == {"error": "insufficient tokens", "remaining": 1000, "requested": 1001}
    assert unauthenticated.status_code == 401
    assert client.get("/billing/api/tokens/usage", headers=_alice()).json()["token_used"] == 0


def test_the_fixed_price_route_and_the_docs(example: dict[str, Any]) -> None:
    client = TestClient(example["app"])

    summarised = client.post("/summarise", headers=_alice())
    document = client.get("/openapi.json").json()

    assert summarised.json() == {"remaining": 900}
    validate(document)
    assert {"/chat", "/summarise", "/billing/api/tokens/usage"} <= set(document["paths"])


def test_the_starlette_variant(example: dict[str, Any]) -> None:
    _run(examples()[1], example)
    client = TestClient(example["host"])

    summarised = client.post("/summarise", headers=_alice())
    refused = client.post("/summarise")

    assert summarised.json() == {"remaining": 900}
    assert (refused.status_code, refused.json()) == (401, {"error": "unauthorized"})
    assert client.get("/billing/api/tokens/usage", headers=_alice()).json()["token_used"] == 100


@pytest.fixture
def readme_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", SECRET)
    namespace: dict[str, Any] = {"__name__": "main"}
    _run(first_fenced(README, "python", under="## Inside FastAPI"), namespace, README)
    yield namespace
    namespace["engine"].dispose()


def test_the_readme_example_charges_and_holds(readme_example: dict[str, Any]) -> None:
    client = TestClient(readme_example["app"])

    summarised = client.post("/summarise", headers=_alice())
    chatted = client.post("/chat", headers=_alice())
    unauthenticated = client.post("/chat")

    assert summarised.json() == {"remaining": 900}
    assert chatted.json() == {"used": 120}
    assert unauthenticated.status_code == 401
    usage = client.get("/billing/api/tokens/usage", headers=_alice()).json()
    assert (usage["token_used"], usage["token_held"], usage["remaining"]) == (220, 0, 780)
    assert "/billing/api/tokens/usage" in client.get("/openapi.json").json()["paths"]


def test_the_readme_example_answers_a_duplicate_before_the_endpoint(
    readme_example: dict[str, Any],
) -> None:
    client = TestClient(readme_example["app"])
    keyed = {**_alice(), "Idempotency-Key": "4d1c6e2a-9f3b-4c57-8a0e-1b2c3d4e5f60"}

    answers = [client.post("/chat", headers=keyed) for _ in range(3)]

    assert answers[0].json() == {"used": 120}
    assert [a.status_code for a in answers[1:]] == [409, 409]
    assert {a.json()["error"] for a in answers[1:]} == {"already processed"}
    usage = client.get("/billing/api/tokens/usage", headers=_alice()).json()
    assert usage["token_used"] == 120  # charged once


def test_the_readme_stream_pays_for_what_it_sent(readme_example: dict[str, Any]) -> None:
    client = TestClient(readme_example["app"])

    streamed = client.post("/chat/stream", headers=_alice())
    whole = client.get("/billing/api/tokens/usage", headers=_alice()).json()

    got = asyncio.run(
        stream_then_hang_up(readme_example["app"], "/chat/stream", _alice(), after_chunks=1)
    )
    after = client.get("/billing/api/tokens/usage", headers=_alice()).json()

    assert streamed.text.split() == ["streamed", "word", "by", "word"]
    assert (whole["token_used"], whole["token_held"]) == (160, 0)
    assert after["token_held"] == 0
    assert got[0] == b"streamed\n"
    assert 40 <= after["token_used"] - 160 < 160  # paid for what it got, not the whole hold
