"""The README's "Inside FastAPI" examples run as written, so they cannot drift."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "readme-example-secret-0123456789abcdef-0123456789"


def examples() -> list[str]:
    """The ```python blocks of the "Inside FastAPI" section: the app, the Starlette host."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Inside FastAPI", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def _run(source: str, namespace: dict[str, Any]) -> None:
    # dont_inherit: this module's `from __future__ import annotations` must not reach the
    # example, which (like a user's main.py) has none.
    code = compile(source, str(README), "exec", dont_inherit=True)
    exec(code, namespace)  # noqa: S102 - our own README


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


def test_the_chat_route_bills_the_servers_model_whatever_the_client_names(
    example: dict[str, Any],
) -> None:
    client = TestClient(example["app"])

    answer = client.post(
        "/chat", headers=_alice(), json={"prompt": "hello", "max_tokens": 10, "model": "cheap-1"}
    )

    assert answer.status_code == 200
    ledger = client.get("/billing/api/tokens/ledger", headers=_alice()).json()["entries"]
    assert {entry["usage"]["model"] for entry in ledger[:2]} == {example["MODEL"]} == {"gpt-4o"}
