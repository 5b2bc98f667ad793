"""The FastAPI examples run as written, so they cannot drift: docs/fastapi.md's chat app
and Starlette host, and the README's short FastAPI example."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from doc_blocks import DOCS, README, first_fenced
from fastapi.testclient import TestClient
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
    retry = client.post("/chat", headers=headers, json={"prompt": "hello", "max_tokens": 10})

    assert answer.json() == {"reply": "HELLO", "used": 10, "remaining": 990}
    assert retry.json() == answer.json()  # the same key debits once
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
