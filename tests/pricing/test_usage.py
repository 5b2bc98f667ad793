"""Provider usage normalised into exclusive counts: every token counted exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import token_counts

from tokenplans import MAX_TOKENS, InvalidRequestError, ModelUsage


def test_openai_chat_usage_takes_cached_and_reasoning_tokens_out_of_their_totals() -> None:
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 400, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 200,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }

    assert ModelUsage.from_openai(usage, "o3") == ModelUsage(
        "o3", input_tokens=600, output_tokens=300, cache_read_tokens=400, reasoning_tokens=200
    )


def test_openai_responses_api_usage_is_read_the_same_way() -> None:
    usage = {
        "input_tokens": 1000,
        "input_tokens_details": {"cached_tokens": 400},
        "output_tokens": 500,
        "output_tokens_details": {"reasoning_tokens": 200},
        "total_tokens": 1500,
    }

    assert ModelUsage.from_openai(usage, "o3") == ModelUsage(
        "o3", input_tokens=600, output_tokens=300, cache_read_tokens=400, reasoning_tokens=200
    )


@pytest.mark.parametrize(
    "details",
    [
        {},
        {"prompt_tokens_details": None, "completion_tokens_details": None},
        {"prompt_tokens_details": {}, "completion_tokens_details": {"reasoning_tokens": None}},
    ],
    ids=["missing", "null", "empty-or-null-inside"],
)
def test_openai_details_that_are_missing_or_null_count_nothing(details: dict[str, Any]) -> None:
    usage = {"prompt_tokens": 120, "completion_tokens": 30, **details}

    assert ModelUsage.from_openai(usage, "gpt-4o") == ModelUsage("gpt-4o", 120, 30)


def test_openai_embeddings_usage_without_completion_tokens_is_all_input() -> None:
    usage = {"prompt_tokens": 8, "total_tokens": 8}

    assert ModelUsage.from_openai(usage, "text-embedding-3-small") == ModelUsage(
        "text-embedding-3-small", 8, 0
    )


def test_anthropic_usage_keeps_cache_reads_and_writes_apart_from_input() -> None:
    usage = {
        "input_tokens": 50,
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 8000,
        "output_tokens": 300,
        "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 0},
        "server_tool_use": None,
        "service_tier": "standard",
    }

    assert ModelUsage.from_anthropic(usage, "claude-sonnet-4-5") == ModelUsage(
        "claude-sonnet-4-5",
        input_tokens=50,
        output_tokens=300,
        cache_read_tokens=8000,
        cache_write_tokens=2000,
    )


def test_anthropic_null_cache_fields_count_nothing() -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
    }

    assert ModelUsage.from_anthropic(usage, "claude-haiku-4-5") == ModelUsage(
        "claude-haiku-4-5", 10, 5
    )


def test_anthropic_thinking_tokens_when_reported_are_taken_out_of_output() -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 500,
        "output_tokens_details": {"thinking_tokens": 420},
    }

    assert ModelUsage.from_anthropic(usage, "claude-opus-4-1") == ModelUsage(
        "claude-opus-4-1", 10, 80, reasoning_tokens=420
    )


@given(
    prompt=token_counts,
    completion=token_counts,
    cached_share=st.fractions(0, 1),
    reasoning_share=st.fractions(0, 1),
)
def test_openai_normalisation_keeps_every_reported_token_once(
    prompt: int, completion: int, cached_share: Any, reasoning_share: Any
) -> None:
    cached, reasoning = int(prompt * cached_share), int(completion * reasoning_share)
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }

    normalised = ModelUsage.from_openai(usage, "o3")

    assert normalised.total_tokens == prompt + completion
    assert (normalised.cache_read_tokens, normalised.reasoning_tokens) == (cached, reasoning)


@given(counts=st.tuples(token_counts, token_counts, token_counts, token_counts))
def test_anthropic_normalisation_keeps_every_reported_token_once(
    counts: tuple[int, int, int, int],
) -> None:
    fresh, written, read, output = counts
    usage = {
        "input_tokens": fresh,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": output,
    }

    assert ModelUsage.from_anthropic(usage, "claude-sonnet-4-5").total_tokens == sum(counts)


@pytest.mark.parametrize(
    ("usage", "named"),
    [
        (
            {"prompt_tokens": 100, "prompt_tokens_details": {"cached_tokens": 101}},
            "prompt_tokens_details.cached_tokens (101) cannot exceed prompt_tokens (100)",
        ),
        (
            {
                "prompt_tokens": 1,
                "completion_tokens": 10,
                "completion_tokens_details": {"reasoning_tokens": 11},
            },
            "completion_tokens_details.reasoning_tokens (11) cannot exceed completion_tokens",
        ),
        (
            {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 6}},
            "input_tokens_details.cached_tokens (6) cannot exceed input_tokens (5)",
        ),
        ({"prompt_tokens": -1}, "prompt_tokens must be between 0"),
        ({"prompt_tokens": True}, "prompt_tokens must be a whole number"),
        ({"prompt_tokens": 10.0}, "prompt_tokens must be a whole number"),
        ({"prompt_tokens": "10"}, "prompt_tokens must be a whole number"),
        ({"prompt_tokens": MAX_TOKENS + 1}, "prompt_tokens must be between 0"),
        ({"prompt_tokens": 3, "completion_tokens": False}, "completion_tokens must be a whole"),
        (
            {"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": -2}},
            "prompt_tokens_details.cached_tokens must be between 0",
        ),
        ({"prompt_tokens": 3, "prompt_tokens_details": [1]}, "prompt_tokens_details must be"),
        ({"completion_tokens": 3}, "prompt_tokens is required"),
        ({"prompt_tokens": None}, "prompt_tokens is required"),
        ({}, "prompt_tokens is required"),
        ({"prompt_tokens": 3, "output_tokens": 4}, "mixes chat completions fields"),
    ],
)
def test_inconsistent_openai_usage_is_refused_naming_the_field(
    usage: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidRequestError, match=named.replace("(", r"\(").replace(")", r"\)")):
        ModelUsage.from_openai(usage, "gpt-4o")


@pytest.mark.parametrize(
    ("usage", "named"),
    [
        ({"output_tokens": 1}, "input_tokens is required"),
        ({"input_tokens": 1}, "output_tokens is required"),
        ({"input_tokens": 1, "output_tokens": -3}, "output_tokens must be between 0"),
        (
            {"input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": True},
            "cache_read_input_tokens must be a whole number",
        ),
        (
            {"input_tokens": 1, "output_tokens": 2, "cache_creation_input_tokens": 2.5},
            "cache_creation_input_tokens must be a whole number",
        ),
        (
            {
                "input_tokens": 1,
                "output_tokens": 2,
                "output_tokens_details": {"thinking_tokens": 3},
            },
            "thinking_tokens",
        ),
    ],
)
def test_inconsistent_anthropic_usage_is_refused_naming_the_field(
    usage: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        ModelUsage.from_anthropic(usage, "claude-sonnet-4-5")


@pytest.mark.parametrize("usage", [None, [1, 2], "prompt_tokens=3"])
def test_usage_that_is_not_an_object_is_refused(usage: Any) -> None:
    with pytest.raises(InvalidRequestError, match="must be an object"):
        ModelUsage.from_openai(usage, "gpt-4o")
    with pytest.raises(InvalidRequestError, match="must be an object"):
        ModelUsage.from_anthropic(usage, "claude-sonnet-4-5")


@pytest.mark.parametrize("model", ["", "gpt 4o", "gpt-4o\n", "m" * 201, "gpt-4o\u00e9", 4])
def test_a_model_name_must_be_printable_ascii_without_spaces(model: Any) -> None:
    with pytest.raises(InvalidRequestError, match="model must be"):
        ModelUsage(model, 1, 1)
    with pytest.raises(InvalidRequestError, match="model must be"):
        ModelUsage.from_openai({"prompt_tokens": 1}, model)


@pytest.mark.parametrize(
    "field",
    [
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    ],
)
@pytest.mark.parametrize("bad", [-1, True, 1.0, MAX_TOKENS + 1, None])
def test_a_normalised_usage_refuses_counts_that_are_not_tokens(field: str, bad: Any) -> None:
    counts: dict[str, Any] = {"input_tokens": 1, "output_tokens": 1, field: bad}

    with pytest.raises(InvalidRequestError, match=field):
        ModelUsage("gpt-4o", **counts)


def test_routed_model_names_are_accepted() -> None:
    for model in ["accounts/fireworks/models/llama-v3p1-8b-instruct", "meta-llama/llama-3:free"]:
        assert ModelUsage(model, 1, 2).model == model
