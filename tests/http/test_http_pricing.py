"""Priced consumes over HTTP: ``amount`` or ``usage`` (normalised, or a provider's own
object with ``format``), ``credits`` and ``price_version`` in the answer and the ledger,
``GET /api/pricing``, and an unknown model refused with 400 charging nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from http_support import ALICE, ROOT, identity
from hypothesis import HealthCheck, settings
from schema_checks import call_and_validate_as
from starlette.testclient import TestClient

from tokenplans import PlanCatalog, PriceBook, TokenService
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.http import create_app

EXAMPLE_BOOK = Path(__file__).parents[2] / "docs" / "examples" / "prices.toml"
#: Priced as the pricing walk-through (docs/pricing.md) prices it: 5 credits at the example book.
NORMALISED = {
    "model": "gpt-4o",
    "input_tokens": 600,
    "output_tokens": 300,
    "cache_read_tokens": 400,
}
OPENAI = {
    "format": "openai",
    "model": "gpt-4o",
    "prompt_tokens": 1000,
    "completion_tokens": 300,
    "total_tokens": 1300,
    "prompt_tokens_details": {"cached_tokens": 400, "audio_tokens": None},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
ANTHROPIC = {
    "format": "anthropic",
    "model": "claude-sonnet-4-5",
    "input_tokens": 1200,
    "output_tokens": 300,
    "cache_read_input_tokens": 5000,
    "cache_creation_input_tokens": 800,
}
NO_DEFAULT = {"version": "v7", "models": {"gpt-4o": {"input": 2500, "output": 10000}}}


def app_with(book: PriceBook | None) -> Any:
    service = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock(), pricer=book)
    return create_app(service, identity())


@pytest.fixture
def priced() -> TestClient:
    return TestClient(app_with(PriceBook.from_file(EXAMPLE_BOOK)), raise_server_exceptions=False)


def consume(client: TestClient, body: dict[str, Any], headers: Any = ALICE) -> Any:
    return client.post("/api/tokens/consume", headers=headers, json=body)


@pytest.mark.parametrize(
    ("usage", "credits", "normalised"),
    [
        (NORMALISED, 5, {**NORMALISED, "cache_write_tokens": 0, "reasoning_tokens": 0}),
        (
            OPENAI,
            5,
            {
                "model": "gpt-4o",
                "input_tokens": 600,
                "output_tokens": 300,
                "cache_read_tokens": 400,
                "cache_write_tokens": 0,
                "reasoning_tokens": 0,
            },
        ),
        (
            ANTHROPIC,
            13,  # 3.6 M + 4.5 M + 1.5 M + 3 M = 12.6 M per million: 13 credits
            {
                "model": "claude-sonnet-4-5",
                "input_tokens": 1200,
                "output_tokens": 300,
                "cache_read_tokens": 5000,
                "cache_write_tokens": 800,
                "reasoning_tokens": 0,
            },
        ),
    ],
)
def test_a_consume_with_usage_is_priced_and_answers_credits_and_the_price_version(
    priced: TestClient, usage: dict[str, Any], credits: int, normalised: dict[str, Any]
) -> None:
    response = consume(priced, {"usage": usage})

    assert response.status_code == 200
    answer = response.json()
    assert (answer["amount"], answer["credits"], answer["token_used"]) == (
        credits,
        credits,
        credits,
    )
    assert answer["price_version"] == "2026-12-01"
    assert answer["usage"] == normalised


def test_a_priced_entry_shows_its_call_in_the_ledger_and_others_show_nulls(
    priced: TestClient,
) -> None:
    consume(priced, {"amount": 2})
    consume(priced, {"usage": NORMALISED, "idempotency_key": "chat-1"})

    entries = priced.get("/api/tokens/ledger", headers=ALICE).json()["entries"]

    newest, plain = entries[0], entries[1]
    assert (newest["kind"], newest["amount"], newest["credits"]) == ("debited", 5, 5)
    assert newest["price_version"] == "2026-12-01"
    assert newest["usage"]["cache_read_tokens"] == 400
    assert (plain["credits"], plain["price_version"], plain["usage"]) == (None, None, None)


def test_a_retried_priced_consume_replays_its_first_answer(priced: TestClient) -> None:
    first = consume(priced, {"usage": OPENAI, "idempotency_key": "chat-2"}).json()

    again = consume(priced, {"usage": OPENAI, "idempotency_key": "chat-2"}).json()

    assert again == {**first, "replayed": True}
    assert priced.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 5


def test_an_admin_consumes_a_priced_call_for_a_subject(priced: TestClient) -> None:
    response = priced.post(
        "/api/admin/accounts/bob/consume", headers=ROOT, json={"usage": NORMALISED}
    )

    assert (response.status_code, response.json()["credits"]) == (200, 5)


def test_an_unknown_model_is_a_400_naming_it_and_nothing_is_charged() -> None:
    client = TestClient(app_with(PriceBook.from_mapping(NO_DEFAULT)))
    consume(client, {"amount": 1})

    response = consume(client, {"usage": {**NORMALISED, "model": "mystery-9"}})

    assert response.status_code == 400
    assert response.json() == {"error": "unknown model", "model": "mystery-9"}
    entries = client.get("/api/tokens/ledger", headers=ALICE).json()["entries"]
    assert [entry["kind"] for entry in entries] == ["debited", "opened"]
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 1


def test_without_a_price_book_every_counted_token_is_one_credit() -> None:
    client = TestClient(app_with(None))

    call = {"model": "any-model", "input_tokens": 60, "output_tokens": 30, "reasoning_tokens": 9}
    answer = consume(client, {"usage": call}).json()

    assert (answer["credits"], answer["price_version"]) == (99, "unit")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "exactly one"),
        ({"amount": 5, "usage": NORMALISED}, "exactly one"),
        ({"amount": None, "usage": None}, "exactly one"),
        ({"usage": "gpt-4o"}, "usage must be an object"),
        ({"usage": [1]}, "usage must be an object"),
        ({"usage": {"input_tokens": 1, "output_tokens": 1}}, "model is required"),
        ({"usage": {"model": "gpt-4o", "input_tokens": 1}}, "output_tokens is required"),
        ({"usage": {**NORMALISED, "input_tokens": -1}}, "between 0 and"),
        ({"usage": {**NORMALISED, "input_tokens": True}}, "must be an integer"),
        ({"usage": {**NORMALISED, "input_tokens": 1.0}}, "must be an integer"),
        ({"usage": {**NORMALISED, "prompt_tokens": 1}}, "unknown field(s) prompt_tokens"),
        ({"usage": {**NORMALISED, "model": "gpt 4o"}}, "printable ASCII"),
        ({"usage": {**OPENAI, "format": "gemini"}}, "format must be"),
        ({"usage": {**OPENAI, "format": ["openai"]}}, "format must be"),
        ({"usage": {"format": "openai", "prompt_tokens": 1}}, "model is required"),
        (
            {"usage": {**OPENAI, "prompt_tokens_details": {"cached_tokens": 5000}}},
            "cannot exceed prompt_tokens",
        ),
        ({"usage": {**ANTHROPIC, "input_tokens": None}}, "input_tokens is required"),
        # Documented as an object (or null), so a string is refused even though no count
        # is read from it (schemathesis found it accepted).
        ({"usage": {**ANTHROPIC, "server_tool_use": "x"}}, "server_tool_use must be an object"),
        ({"usage": {**OPENAI, "completion_tokens_details": 3}}, "must be an object or null"),
    ],
)
def test_a_malformed_priced_consume_is_422_and_charges_nothing(
    priced: TestClient, body: dict[str, Any], message: str
) -> None:
    response = consume(priced, body)

    assert response.status_code == 422
    assert message in response.json()["message"]
    assert priced.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 0


def test_the_active_price_book_is_public(priced: TestClient) -> None:
    response = priced.get("/api/pricing")

    assert response.status_code == 200
    answer = response.json()
    assert (answer["kind"], answer["version"]) == ("price_book", "2026-12-01")
    assert answer["models"]["*"] == {
        "input": "0.15",
        "output": "0.6",
        "cache_read": "0.15",
        "cache_write": "0.15",
        "reasoning": "0.6",
    }
    assert answer["models"]["gpt-4o"]["cache_write"] == "2500"


def test_without_a_price_book_the_pricing_says_one_credit_per_token() -> None:
    answer = TestClient(app_with(None)).get("/api/pricing").json()

    assert (answer["kind"], answer["version"]) == ("unit", "unit")
    assert answer["models"]["*"]["input"] == "1000000"


HOLDS = "/api/tokens/holds"
O3_CALL = {"model": "o3", "input_tokens": 1000, "max_output_tokens": 4096}


def test_a_hold_is_reserved_from_an_estimate_and_settled_from_usage(priced: TestClient) -> None:
    reserved = priced.post(HOLDS, headers=ALICE, json={"estimate": O3_CALL, "hold_id": "c-1"})
    settled = priced.post(
        f"{HOLDS}/c-1/settle",
        headers=ALICE,
        json={"usage": {**OPENAI, "model": "o3", "completion_tokens_details": None}},
    )

    assert reserved.status_code == 201
    held = reserved.json()
    # 1000 x 2000 + 4096 x 8000 per million, rounded up: 35 held.
    assert (held["amount"], held["credits"], held["token_held"]) == (35, 35, 35)
    assert held["price_version"] == "2026-12-01"
    assert held["usage"] == {
        "model": "o3",
        "input_tokens": 1000,
        "output_tokens": 4096,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert settled.status_code == 200
    done = settled.json()
    # 600 x 2000 + 400 cached x 500 + 300 x 8000 = 3.8 M per million: 4 credits.
    assert (done["status"], done["settled"], done["credits"]) == ("settled", 4, 4)
    assert (done["token_used"], done["token_held"]) == (4, 0)
    entries = priced.get("/api/tokens/ledger", headers=ALICE).json()["entries"]
    assert [(e["kind"], e["credits"]) for e in entries[:2]] == [
        ("hold_settled", 4),
        ("hold_placed", 35),
    ]


def test_an_unpriced_hold_answers_without_credits(priced: TestClient) -> None:
    held = priced.post(HOLDS, headers=ALICE, json={"amount": 30, "hold_id": "plain"}).json()
    settled = priced.post(f"{HOLDS}/plain/settle", headers=ALICE, json={"amount": 20}).json()

    assert "credits" not in held
    assert "credits" not in settled


def test_an_estimate_for_an_unknown_model_is_a_400_and_holds_nothing() -> None:
    client = TestClient(app_with(PriceBook.from_mapping(NO_DEFAULT)))

    response = client.post(HOLDS, headers=ALICE, json={"estimate": {**O3_CALL, "model": "zz"}})

    assert (response.status_code, response.json()) == (
        400,
        {"error": "unknown model", "model": "zz"},
    )
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_held"] == 0


def test_a_settle_for_an_unknown_model_is_a_400_and_leaves_the_hold_open() -> None:
    client = TestClient(app_with(PriceBook.from_mapping(NO_DEFAULT)))
    client.post(HOLDS, headers=ALICE, json={"amount": 10, "hold_id": "h"})

    response = client.post(
        f"{HOLDS}/h/settle", headers=ALICE, json={"usage": {**NORMALISED, "model": "zz"}}
    )

    assert response.status_code == 400
    assert client.get(f"{HOLDS}/h", headers=ALICE).json()["status"] == "open"
    assert client.get("/api/tokens/usage", headers=ALICE).json()["token_used"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "send amount or estimate: exactly one"),
        ({"amount": 5, "estimate": O3_CALL}, "exactly one"),
        ({"estimate": "o3"}, "estimate must be an object"),
        ({"estimate": {"model": "o3", "input_tokens": 1}}, "max_output_tokens is required"),
        ({"estimate": {**O3_CALL, "input_tokens": "1"}}, "input_tokens must be an integer"),
        ({"estimate": {**O3_CALL, "max_output_tokens": -1}}, "between 0 and"),
        ({"estimate": {**O3_CALL, "temperature": 1}}, "unknown field(s) temperature"),
        ({"estimate": {**O3_CALL, "model": ""}}, "printable ASCII"),
    ],
)
def test_a_malformed_estimate_is_422_and_holds_nothing(
    priced: TestClient, body: dict[str, Any], message: str
) -> None:
    response = priced.post(HOLDS, headers=ALICE, json=body)

    assert response.status_code == 422
    assert message in response.json()["message"]
    assert priced.get("/api/tokens/usage", headers=ALICE).json()["token_held"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "send amount or usage: exactly one"),
        ({"amount": 5, "usage": NORMALISED}, "exactly one"),
        ({"usage": {"model": "o3"}}, "input_tokens is required"),
    ],
)
def test_a_malformed_priced_settle_is_422_and_leaves_the_hold_open(
    priced: TestClient, body: dict[str, Any], message: str
) -> None:
    priced.post(HOLDS, headers=ALICE, json={"amount": 10, "hold_id": "h"})

    response = priced.post(f"{HOLDS}/h/settle", headers=ALICE, json=body)

    assert response.status_code == 422
    assert message in response.json()["message"]
    assert priced.get(f"{HOLDS}/h", headers=ALICE).json()["status"] == "open"


@pytest.fixture
def priced_schema() -> Any:
    return schemathesis.openapi.from_asgi(
        "/openapi.json", app_with(PriceBook.from_mapping(NO_DEFAULT))
    )


priced_api = schemathesis.pytest.from_fixture("priced_schema")


@priced_api.include(path_regex="consume|pricing|holds").parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_priced_routes_answer_as_the_document_says(case: Any) -> None:
    call_and_validate_as(case, ROOT)


def test_a_call_that_costs_nothing_is_refused_and_a_settle_of_nothing_is_not() -> None:
    """A debit or a hold costs at least one credit (rows nobody pays for would grow an
    account without bound); a settle of 0 closes a hold and is fine."""
    client = TestClient(app_with(None))
    nothing = {"model": "gpt-4o", "input_tokens": 0, "output_tokens": 0}

    consumed = client.post("/api/tokens/consume", headers=ALICE, json={"usage": nothing})
    held = client.post(
        HOLDS,
        headers=ALICE,
        json={"estimate": {**O3_CALL, "input_tokens": 0, "max_output_tokens": 0}},
    )

    for refused, what in ((consumed, "consume"), (held, "reserve")):
        assert refused.status_code == 422
        assert refused.json()["message"].startswith(f"the call costs 0 credits: {what} takes")
    assert client.get("/api/tokens/holds", headers=ALICE).json()["holds"] == []
    assert client.get("/api/tokens/ledger", headers=ALICE).json()["entries"] == []

    placed = client.post(HOLDS, headers=ALICE, json={"amount": 5, "hold_id": "h"}).json()
    settled = client.post(
        f"{HOLDS}/{placed['hold_id']}/settle", headers=ALICE, json={"usage": nothing}
    )
    assert (settled.status_code, settled.json()["settled"], settled.json()["credits"]) == (
        200,
        0,
        0,
    )
