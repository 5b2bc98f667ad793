"""``Depends(tp.hold(estimate=...))`` and ``Depends(tp.charge(usage=...))``: a host endpoint
holds the most a model call can cost from its request, settles from the usage the
provider reports, and an unknown model is refused before anything is held or debited."""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at run
# time, and the ones below name a local (`tp`).

from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from fastapi_support import bearer, build_host, idempotency_key
from pydantic import BaseModel

from tokenplans import DebitReceipt, Estimate, ModelUsage, PriceBook
from tokenplans.aio import AsyncReservation

EXAMPLE_BOOK = Path(__file__).resolve().parents[2] / "docs" / "examples" / "prices.toml"
#: Rates in credits per million tokens; no `default`, so another model is unknown.
LISTED_ONLY = PriceBook.from_mapping(
    {
        "version": "fastapi-test",
        "models": {
            "o3": {"input": 2000, "output": 8000, "cache_read": 500},
            "embed-small": {"input": 20000, "output": 0},
        },
    }
)


class AskRequest(BaseModel):
    model: str
    prompt_tokens: int  # what the host's tokenizer counted
    max_tokens: int
    answer: str = "ok"  # what the fake provider does: "ok", "fail", or "forget"


class EmbedRequest(BaseModel):
    model: str
    input_tokens: int


def ask_estimate(body: AskRequest) -> Estimate:
    return Estimate(body.model, input_tokens=body.prompt_tokens, max_output_tokens=body.max_tokens)


def embed_usage(body: EmbedRequest) -> ModelUsage:
    return ModelUsage(body.model, input_tokens=body.input_tokens, output_tokens=0)


class ProviderError(Exception):
    """The model provider failed: the call used nothing."""


def _host(book: PriceBook) -> tuple[FastAPI, TestClient]:
    host, tp = build_host(pricer=book)
    ran: list[str] = host.state.ran

    @host.post("/ask")
    async def ask(
        body: AskRequest,
        reservation: Annotated[
            AsyncReservation, Depends(tp.hold(estimate=ask_estimate, hold_id=idempotency_key))
        ],
    ) -> dict[str, Any]:
        ran.append("ask")
        if body.answer == "fail":
            raise ProviderError("the provider answered 500")
        if body.answer == "forget":
            return {"settled": False}
        # The provider's usage, as OpenAI's response.usage.model_dump() gives it.
        provider_usage = {
            "prompt_tokens": body.prompt_tokens,
            "completion_tokens": 900,
            "completion_tokens_details": {"reasoning_tokens": 700},
        }
        hold = await reservation.settle(usage=ModelUsage.from_openai(provider_usage, body.model))
        return {"held": hold.amount, "settled": hold.settled}

    @host.post("/ask-o3")  # a fixed estimate: the same call every time
    async def ask_o3(
        reservation: Annotated[
            AsyncReservation,
            Depends(tp.hold(estimate=Estimate("o3", input_tokens=1000, max_output_tokens=4096))),
        ],
    ) -> dict[str, Any]:
        hold = await reservation.settle(usage=ModelUsage("o3", input_tokens=1000, output_tokens=1))
        return {"held": hold.amount, "settled": hold.settled}

    @host.post("/embed")
    async def embed(
        body: EmbedRequest,
        receipt: Annotated[DebitReceipt, Depends(tp.charge(usage=embed_usage))],
    ) -> dict[str, Any]:
        ran.append("embed")
        assert receipt.priced is not None
        return {"charged": receipt.amount, "price_version": receipt.priced.price_version}

    return host, TestClient(host, raise_server_exceptions=False)


def _usage(client: TestClient) -> dict[str, Any]:
    answer: dict[str, Any] = client.get("/billing/api/tokens/usage", headers=bearer("alice")).json()
    return answer


def _ledger(client: TestClient) -> list[dict[str, Any]]:
    page = client.get("/billing/api/tokens/ledger", headers=bearer("alice")).json()
    entries: list[dict[str, Any]] = page["entries"]
    return entries


def _ask(client: TestClient, **body: Any) -> Any:
    return client.post(
        "/ask",
        headers=bearer("alice"),
        json={"model": "o3", "prompt_tokens": 1000, "max_tokens": 4096, **body},
    )


@pytest.mark.parametrize("book", [LISTED_ONLY, PriceBook.from_file(EXAMPLE_BOOK)])
def test_a_hold_from_an_estimate_holds_the_most_and_settles_what_the_usage_costs(
    book: PriceBook,
) -> None:
    _, client = _host(book)

    answer = _ask(client)

    # held: 1000 x 2000 + 4096 x 8000 per million, rounded up; settled: 1000 x 2000 +
    # 200 output x 8000 + 700 reasoning x 8000 per million.
    assert (answer.status_code, answer.json()) == (200, {"held": 35, "settled": 10})
    usage = _usage(client)
    assert (usage["token_used"], usage["token_held"], usage["remaining"]) == (10, 0, 990)
    settled, placed = _ledger(client)[:2]
    assert (settled["kind"], settled["credits"], settled["usage"]["reasoning_tokens"]) == (
        "hold_settled",
        10,
        700,
    )
    assert (placed["kind"], placed["credits"], placed["usage"]["output_tokens"]) == (
        "hold_placed",
        35,
        4096,
    )
    assert settled["price_version"] == placed["price_version"] == book.version


def test_a_retry_with_the_same_key_is_already_processed_and_charged_once() -> None:
    _, client = _host(LISTED_ONLY)
    keyed = {**bearer("alice"), "Idempotency-Key": "ask-1"}
    body = {"model": "o3", "prompt_tokens": 1000, "max_tokens": 4096}

    first = client.post("/ask", headers=keyed, json=body)
    retry = client.post("/ask", headers=keyed, json=body)

    assert first.json() == {"held": 35, "settled": 10}
    assert retry.status_code == 409
    assert (retry.json()["error"], retry.json()["settled"]) == ("already processed", 10)
    assert _usage(client)["token_used"] == 10
    assert [entry["hold_id"] for entry in _ledger(client)[:2]] == ["ask-1", "ask-1"]


def test_a_constant_estimate_is_held_for_every_request() -> None:
    _, client = _host(LISTED_ONLY)

    answers = [client.post("/ask-o3", headers=bearer("alice")).json() for _ in range(2)]

    assert answers == [{"held": 35, "settled": 3}] * 2  # 1000 x 2000 + 1 x 8000 per million
    assert _usage(client)["token_used"] == 6


def test_an_unknown_model_is_the_400_before_anything_is_held_or_the_endpoint_runs() -> None:
    host, client = _host(LISTED_ONLY)

    refused = _ask(client, model="gpt-unknown")

    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "unknown model", "model": "gpt-unknown"},
    )
    assert host.state.ran == []
    assert _usage(client)["token_held"] == 0
    assert _ledger(client) == []


def test_an_estimate_above_the_balance_is_the_402_and_the_endpoint_never_runs() -> None:
    host, client = _host(LISTED_ONLY)

    # 1000 x 2000 + 200,000 x 8000 per million = 1602 credits, more than the 1000 left.
    refused = _ask(client, max_tokens=200_000)

    assert refused.status_code == 402
    assert refused.json() == {"error": "insufficient tokens", "remaining": 1000, "requested": 1602}
    assert host.state.ran == []
    assert _usage(client)["token_held"] == 0


@pytest.mark.parametrize("answer", ["fail", "forget"])
def test_an_estimated_hold_is_released_when_the_endpoint_fails_or_forgets_to_settle(
    answer: str,
) -> None:
    _, client = _host(LISTED_ONLY)

    response = _ask(client, answer=answer)

    assert response.status_code == (500 if answer == "fail" else 200)
    usage = _usage(client)
    assert (usage["token_used"], usage["token_held"], usage["remaining"]) == (0, 0, 1000)
    kinds = [entry["kind"] for entry in _ledger(client)]
    assert kinds == ["hold_released", "hold_placed", "opened"]


def test_a_charge_from_a_usage_known_before_the_call_debits_its_price() -> None:
    _, client = _host(LISTED_ONLY)

    charged = client.post(
        "/embed", headers=bearer("alice"), json={"model": "embed-small", "input_tokens": 1000}
    )

    assert charged.json() == {"charged": 20, "price_version": "fastapi-test"}  # 1000 x 20000
    assert _usage(client)["token_used"] == 20
    assert _ledger(client)[0]["usage"]["input_tokens"] == 1000


def test_a_charge_for_an_unknown_model_is_the_400_and_debits_nothing() -> None:
    host, client = _host(LISTED_ONLY)

    refused = client.post(
        "/embed", headers=bearer("alice"), json={"model": "embed-large", "input_tokens": 1000}
    )

    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "unknown model", "model": "embed-large"},
    )
    assert host.state.ran == []
    assert _ledger(client) == []


@pytest.mark.parametrize(
    "declare",
    [
        lambda tp: tp.hold(),
        lambda tp: tp.hold(10, estimate=ask_estimate),
        lambda tp: tp.charge(),
        lambda tp: tp.charge(10, usage=embed_usage),
    ],
    ids=["hold-neither", "hold-both", "charge-neither", "charge-both"],
)
def test_a_charge_or_hold_takes_exactly_one_of_an_amount_and_a_call(declare: Any) -> None:
    _, tp = build_host()

    with pytest.raises(ValueError, match="exactly one of amount and"):
        declare(tp)
