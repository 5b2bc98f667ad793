"""The price book: exact credits, rounded up once per call, and loud about bad books."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import calls_within_estimates, model_usages, price_book_mappings

from tokenplans import (
    InvalidRequestError,
    ModelUsage,
    PriceBook,
    PriceBookError,
    Quote,
    Rates,
    UnitPricer,
    UnknownModelError,
)
from tokenplans.ports import decimal_text

EXAMPLE_BOOK = Path(__file__).parents[2] / "docs" / "examples" / "prices.toml"
GPT_4O = {"input": 2500, "output": 10000, "cache_read": 1250}


def book(**models: dict[str, Any]) -> PriceBook:
    return PriceBook.from_mapping({"version": "2026-12-01", "models": models})


def test_each_kind_of_token_is_charged_at_its_own_rate() -> None:
    usage = ModelUsage("gpt-4o", 600, 300, cache_read_tokens=400, reasoning_tokens=200)

    quote = book(**{"gpt-4o": GPT_4O}).price(usage)

    # 600 x 2500 + 300 x 10000 + 400 x 1250 + 200 x 10000 (reasoning falls back to output)
    assert quote == Quote(
        model="gpt-4o",
        credits=7,
        price_version="2026-12-01",
        priced_as="gpt-4o",
        rates=Rates(
            input=Fraction(2500),
            output=Fraction(10000),
            cache_read=Fraction(1250),
            cache_write=Fraction(2500),
            reasoning=Fraction(10000),
        ),
    )


def test_the_total_is_rounded_up_once_per_call_not_once_per_field() -> None:
    # Half a credit of each of the five kinds: 2.5 credits, charged as 3 (per field: 5).
    pricer = book(**{"*": {"input": 1, "output": 1}})
    usage = ModelUsage("any", 500_000, 500_000, 500_000, 500_000, 500_000)

    assert pricer.price(usage).credits == 3


def test_a_call_costing_a_sliver_of_a_credit_costs_one_and_nothing_costs_nothing() -> None:
    pricer = book(**{"*": {"input": "0.15", "output": "0.6"}})

    assert pricer.price(ModelUsage("any", 1, 0)).credits == 1
    assert pricer.price(ModelUsage("any", 0, 0)).credits == 0


def test_huge_counts_are_priced_exactly() -> None:
    pricer = book(**{"*": {"input": "0.15", "output": "0.6"}})

    assert pricer.price(ModelUsage("any", 10**12, 0)).credits == 150_000
    assert pricer.price(ModelUsage("any", 10**12, 10**12)).credits == 750_000


def test_floats_in_a_book_file_are_read_through_their_decimal_text(tmp_path: Path) -> None:
    # As a binary float 0.1 is slightly above a tenth: 10**12 tokens would cost 100001.
    toml = tmp_path / "prices.toml"
    toml.write_text('version = "v"\n[models."*"]\ninput = 0.1\noutput = 0.1\n')
    as_json = tmp_path / "prices.json"
    as_json.write_text(json.dumps({"version": "v", "models": {"*": {"input": 0.1, "output": 0.1}}}))
    usage = ModelUsage("any", 10**12, 0)

    assert PriceBook.from_file(toml).price(usage).credits == 100_000
    assert PriceBook.from_file(as_json).price(usage).credits == 100_000
    assert book(**{"*": {"input": 0.1, "output": 0.1}}).price(usage).credits == 100_000


def test_unset_cache_rates_fall_back_to_input_and_reasoning_to_output() -> None:
    rates = book(m={"input": 3, "output": 7}).models["m"]

    assert (rates.cache_read, rates.cache_write, rates.reasoning) == (3, 3, 7)


def test_a_model_not_in_the_book_is_priced_at_default() -> None:
    pricer = book(**{"gpt-4o": GPT_4O, "*": {"input": 1, "output": 2}})

    quote = pricer.price(ModelUsage("mistral-large", 10**6, 10**6))

    assert (quote.credits, quote.priced_as, quote.model) == (3, "*", "mistral-large")


def test_an_unknown_model_without_default_is_refused() -> None:
    pricer = book(**{"gpt-4o": GPT_4O})

    with pytest.raises(UnknownModelError, match="unknown model 'gpt-5'") as refused:
        pricer.price(ModelUsage("gpt-5", 1, 1))
    with pytest.raises(UnknownModelError):
        pricer.estimate("gpt-5", 1, 1)
    assert refused.value.model == "gpt-5"


def test_the_example_book_in_the_docs_loads_and_prices() -> None:
    pricer = PriceBook.from_file(EXAMPLE_BOOK)
    usage = ModelUsage.from_anthropic(
        {
            "input_tokens": 1000,
            "cache_read_input_tokens": 10_000,
            "cache_creation_input_tokens": 2000,
            "output_tokens": 400,
        },
        "claude-sonnet-4-5",
    )

    # 1000 x 3000 + 10000 x 300 + 2000 x 3750 + 400 x 15000 = 19.5 million: 19.5 credits
    assert pricer.price(usage).credits == 20
    assert pricer.version == "2026-12-01"
    assert pricer.describe()["models"]["*"] == {
        "input": "0.15",
        "output": "0.6",
        "cache_read": "0.15",
        "cache_write": "0.15",
        "reasoning": "0.6",
    }


def test_describe_shows_the_book_with_fallbacks_filled_in() -> None:
    assert book(m={"input": "0.075", "output": 2}).describe() == {
        "kind": "price_book",
        "version": "2026-12-01",
        "unit": "credits per million tokens",
        "models": {
            "m": {
                "input": "0.075",
                "output": "2",
                "cache_read": "0.075",
                "cache_write": "0.075",
                "reasoning": "2",
            }
        },
    }


@pytest.mark.parametrize(
    ("mapping", "named"),
    [
        ({"models": {"m": {"input": 1, "output": 1}}}, 'field "version" is required'),
        ({"version": 3, "models": {"m": {"input": 1, "output": 1}}}, 'field "version": must be'),
        ({"version": "", "models": {"m": {"input": 1, "output": 1}}}, 'field "version": must be'),
        ({"version": "v"}, 'field "models"'),
        ({"version": "v", "models": {}}, 'field "models"'),
        ({"version": "v", "models": []}, 'field "models"'),
        (
            {"version": "v", "models": {"m": {"input": 1, "output": 1}}, "currency": "USD"},
            "'currency'",
        ),
        ({"version": "v", "models": {"m": 5}}, "model 'm': expected a table"),
        ({"version": "v", "models": {"m": {"output": 1}}}, "model 'm': field 'input' is required"),
        ({"version": "v", "models": {"m": {"input": 1}}}, "model 'm': field 'output' is required"),
        (
            {"version": "v", "models": {"m": {"input": 1, "output": 1, "cached": 1}}},
            r"model 'm': unknown field\(s\) \['cached'\]",
        ),
        (
            {"version": "v", "models": {"m": {"input": -1, "output": 1}}},
            "model 'm', field 'input': must not be negative",
        ),
        (
            {"version": "v", "models": {"m": {"input": 1, "output": "-0.5"}}},
            "model 'm', field 'output': must be a number or a decimal string",
        ),
        (
            {"version": "v", "models": {"m": {"input": 1, "output": "cheap"}}},
            "model 'm', field 'output': must be a number",
        ),
        (
            {"version": "v", "models": {"m": {"input": 1, "output": 1, "reasoning": float("nan")}}},
            "model 'm', field 'reasoning': must be a finite number",
        ),
        (
            {"version": "v", "models": {"m": {"input": float("inf"), "output": 1}}},
            "model 'm', field 'input': must be a finite number",
        ),
        (
            {"version": "v", "models": {"m": {"input": "NaN", "output": 1}}},
            "model 'm', field 'input': must be a number",
        ),
        (
            {"version": "v", "models": {"m": {"input": True, "output": 1}}},
            "model 'm', field 'input': must be a number",
        ),
        (
            {"version": "v", "models": {"m": {"input": 1, "output": 10**13}}},
            "model 'm', field 'output': must be at most",
        ),
        (
            {"version": "v", "models": {"m": {"input": 1, "cache_write": None, "output": 1}}},
            "model 'm', field 'cache_write': must be a number",
        ),
        ({"version": "v", "models": {"gpt 4o": {"input": 1, "output": 1}}}, "model 'gpt 4o'"),
        ({"version": "v", "models": {"": {"input": 1, "output": 1}}}, "model ''"),
        ("version = 'v'", "expected a table"),
    ],
)
def test_an_invalid_book_fails_at_load_naming_the_model_and_field(mapping: Any, named: str) -> None:
    with pytest.raises(PriceBookError, match=named):
        PriceBook.from_mapping(mapping)


def test_an_unquoted_toml_date_as_version_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('version = 2026-12-01\n[models."*"]\ninput = 1\noutput = 1\n')

    with pytest.raises(PriceBookError, match="must be a quoted string"):
        PriceBook.from_file(path)


@pytest.mark.parametrize(
    ("name", "text", "named"),
    [
        ("prices.yaml", "version: v", "must end in .toml or .json"),
        ("prices.toml", "version = ", "does not parse"),
        ("prices.json", "{", "does not parse"),
        ("prices.json", '{"version": "v", "models": {"m": {"input": NaN, "output": 1}}}', "finite"),
    ],
)
def test_a_book_file_that_cannot_be_read_fails_naming_the_file(
    tmp_path: Path, name: str, text: str, named: str
) -> None:
    path = tmp_path / name
    path.write_text(text)

    with pytest.raises(PriceBookError, match=named):
        PriceBook.from_file(path)


def test_a_missing_book_file_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PriceBookError, match=r"cannot read price book .*nowhere\.toml"):
        PriceBook.from_file(tmp_path / "nowhere.toml")


def test_estimate_charges_the_whole_answer_at_the_dearer_of_output_and_reasoning() -> None:
    pricer = book(m={"input": 1, "output": 4, "reasoning": 6}, n={"input": 1, "output": 4})

    assert pricer.estimate("m", 10**6, 10**6).credits == 7
    assert pricer.estimate("n", 10**6, 10**6).credits == 5


@pytest.mark.parametrize(
    ("input_tokens", "max_output_tokens", "named"),
    [(-1, 1, "input_tokens"), (1, True, "max_output_tokens"), (1, 10**13, "max_output_tokens")],
)
def test_estimate_refuses_counts_that_are_not_tokens(
    input_tokens: Any, max_output_tokens: Any, named: str
) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        book(**{"*": {"input": 1, "output": 1}}).estimate("m", input_tokens, max_output_tokens)


def test_without_a_price_book_every_counted_token_costs_one_credit() -> None:
    pricer = UnitPricer()
    usage = ModelUsage(
        "anything", 600, 300, cache_read_tokens=400, cache_write_tokens=7, reasoning_tokens=200
    )

    assert pricer.price(usage).credits == 1507
    assert pricer.price(usage).price_version == "unit"
    assert pricer.estimate("anything", 1000, 256).credits == 1256
    assert pricer.describe()["models"]["*"]["input"] == "1000000"


# --------------------------------------------------------------------------- properties

_KINDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


@given(
    mapping=price_book_mappings(),
    usage=model_usages(),
    kind=st.sampled_from(_KINDS),
    more=st.integers(1, 10**9),
)
def test_more_tokens_never_cost_fewer_credits(
    mapping: dict[str, Any], usage: ModelUsage, kind: str, more: int
) -> None:
    pricer = PriceBook.from_mapping(mapping)
    bigger = attrs.evolve(usage, **{kind: getattr(usage, kind) + more})

    assert pricer.price(bigger).credits >= pricer.price(usage).credits


@given(mapping=price_book_mappings(), first=model_usages(), second=model_usages())
def test_two_calls_cost_their_sum_or_at_most_one_credit_more(
    mapping: dict[str, Any], first: ModelUsage, second: ModelUsage
) -> None:
    pricer = PriceBook.from_mapping(mapping)
    both = attrs.evolve(
        first, **{kind: getattr(first, kind) + getattr(second, kind) for kind in _KINDS}
    )

    together = pricer.price(both).credits
    apart = pricer.price(first).credits + pricer.price(second).credits

    assert together <= apart <= together + 1


@given(
    mapping=price_book_mappings(),
    call=st.sampled_from(["gpt-4o", "unlisted"]).flatmap(calls_within_estimates),
)
def test_an_estimate_covers_any_answer_up_to_max_output_tokens(
    mapping: dict[str, Any], call: tuple[int, int, ModelUsage]
) -> None:
    pricer = PriceBook.from_mapping(mapping)
    input_tokens, max_output, usage = call

    assert (
        pricer.price(usage).credits
        <= pricer.estimate(usage.model, input_tokens, max_output).credits
    )


@given(st.decimals(0, 10**12, places=12, allow_nan=False, allow_infinity=False))
def test_rates_are_shown_as_the_exact_decimal_they_were_read_from(value: Decimal) -> None:
    text = decimal_text(Fraction(value))

    assert Decimal(text) == value
    assert "e" not in text.lower()
    assert not ("." in text and text.endswith("0"))


@pytest.mark.parametrize(
    ("version", "models", "named"),
    [
        ("", {"m": Rates.flat(Fraction(1))}, 'field "version"'),
        ("v", {}, 'field "models"'),
        ("v", {"bad name": Rates.flat(Fraction(1))}, "model 'bad name'"),
        ("v", {"m": {"input": 1, "output": 1}}, "expected Rates"),
    ],
)
def test_a_book_built_directly_is_validated_too(version: str, models: Any, named: str) -> None:
    with pytest.raises(PriceBookError, match=named):
        PriceBook(version, models)
