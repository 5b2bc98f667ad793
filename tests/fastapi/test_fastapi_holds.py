"""``Depends(tp.hold(...))``: a host endpoint holds tokens for a model call, settles what it
really used, and never leaves a hold open behind an error or a forgotten settle."""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at run
# time, and the one below names a local (`tp`).

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from fastapi_support import ChatRequest, bearer, build_host, chat_cost

from tokenplans.aio import AsyncReservation


class ModelFailedError(Exception):
    """The model provider failed: the call used nothing."""


def _host() -> tuple[FastAPI, TestClient]:
    host, tp = build_host()

    @host.post("/metered")
    async def metered(
        body: ChatRequest,
        reservation: Annotated[AsyncReservation, Depends(tp.hold(chat_cost))],
    ) -> dict[str, Any]:
        if body.prompt == "fail":
            raise ModelFailedError("the provider answered 500")
        if body.prompt == "forget":
            return {"settled": False}
        used = len(body.prompt) * 100  # what the provider reports
        hold = await reservation.settle(used)
        return {"held": hold.amount, "settled": hold.settled, "overage": hold.overage}

    return host, TestClient(host, raise_server_exceptions=False)


def _usage(client: TestClient) -> dict[str, Any]:
    answer: dict[str, Any] = client.get("/billing/api/tokens/usage", headers=bearer("alice")).json()
    return answer


@pytest.mark.parametrize(("prompt", "used"), [("hi", 200), ("hello", 500)])
def test_a_held_call_is_charged_what_it_used_below_or_above_its_hold(
    prompt: str, used: int
) -> None:
    _, client = _host()

    answer = client.post(
        "/metered", headers=bearer("alice"), json={"prompt": prompt, "max_tokens": 300}
    )

    assert answer.status_code == 200
    assert answer.json() == {"held": 300, "settled": used, "overage": 0}
    usage = _usage(client)
    assert (usage["token_used"], usage["token_held"], usage["remaining"]) == (used, 0, 1000 - used)


@pytest.mark.parametrize("prompt", ["fail", "forget"])
def test_an_endpoint_that_fails_or_forgets_to_settle_releases_its_hold(prompt: str) -> None:
    _, client = _host()

    answer = client.post(
        "/metered", headers=bearer("alice"), json={"prompt": prompt, "max_tokens": 300}
    )

    assert answer.status_code == (500 if prompt == "fail" else 200)
    usage = _usage(client)
    assert (usage["token_used"], usage["token_held"], usage["remaining"]) == (0, 0, 1000)
    holds = client.get("/billing/api/tokens/ledger", headers=bearer("alice")).json()["entries"]
    assert [entry["kind"] for entry in holds][:2] == ["hold_released", "hold_placed"]


def test_a_hold_larger_than_the_balance_is_the_402_and_the_endpoint_never_runs() -> None:
    host, client = _host()

    refused = client.post(
        "/metered", headers=bearer("alice"), json={"prompt": "hi", "max_tokens": 1001}
    )
    assert host.state.ran == []  # (the shared host's own routes did not run either)

    assert refused.status_code == 402
    assert refused.json() == {"error": "insufficient tokens", "remaining": 1000, "requested": 1001}
    assert _usage(client)["token_held"] == 0


def test_a_hold_outside_the_core_limits_is_refused_when_declared() -> None:
    _, tp = build_host()

    with pytest.raises(ValueError, match="amount must be 1 to"):
        tp.hold(0)
