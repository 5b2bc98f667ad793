"""Text that JSON can carry but no database can store (NUL, a lone surrogate) is refused
with 422 before it reaches the store: on PostgreSQL it used to be a driver error, a 500."""

from __future__ import annotations

import pytest
from http_support import ALICE, build_app
from starlette.testclient import TestClient


@pytest.mark.parametrize("escaped", [r"\u0000", r"\ud800"], ids=["NUL", "lone surrogate"])
def test_an_idempotency_key_no_store_can_keep_is_a_422(escaped: str) -> None:
    client = TestClient(build_app())
    body = '{"amount": 5, "idempotency_key": "key-' + escaped + '"}'

    response = client.post(
        "/api/tokens/consume",
        content=body,
        headers={**ALICE, "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["error"] == "invalid request"
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 0
