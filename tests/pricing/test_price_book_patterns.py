"""Which entry prices a model: its own, else the longest pattern it starts with, else
the explicit catch-all ``"*"``, else none (refused). ``default`` is no longer special.

A book used to price every unlisted model at ``default``, so ``gpt-4o-2024-08-06`` (the
name a provider reports for a dated version) cost a cheap model's price; patterns price
a family of names at its own rates, and a catch-all is an entry a reader sees.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenplans import DEFAULT_MODEL, ModelUsage, PriceBook, PriceBookError, UnknownModelError

EXAMPLE_BOOK = Path(__file__).parents[2] / "docs" / "examples" / "prices.toml"
GPT_4O = {"input": 2500, "output": 10000, "cache_read": 1250}
CHEAP = {"input": "0.15", "output": "0.6"}


def book(**models: dict[str, Any]) -> PriceBook:
    return PriceBook.from_mapping({"version": "v", "models": models})


def test_a_dated_name_is_priced_at_its_familys_rates_not_the_catch_all() -> None:
    pricer = PriceBook.from_file(EXAMPLE_BOOK)
    usage = {"input_tokens": 100_000, "output_tokens": 4_000}

    dated = pricer.price(ModelUsage("gpt-4o-2024-08-06", **usage))
    plain = pricer.price(ModelUsage("gpt-4o", **usage))

    # 100000 x 2500 + 4000 x 10000 = 290 million: 290 credits (the catch-all: 1)
    assert (dated.credits, dated.priced_as, dated.rates) == (290, "gpt-4o-*", plain.rates)
    assert pricer.estimate("gpt-4o-2024-08-06", 1000, 4096).credits == (
        pricer.estimate("gpt-4o", 1000, 4096).credits
    )


def test_an_exact_name_beats_any_pattern_and_the_longest_pattern_wins() -> None:
    pricer = book(
        **{
            "gpt-4o": GPT_4O,
            "gpt-4o*": {"input": 3, "output": 3},
            "gpt-4o-mini*": {"input": 2, "output": 2},
            "gpt-*": {"input": 1, "output": 1},
            "*": CHEAP,
        }
    )

    def priced_as(model: str) -> str:
        return pricer.rates_for(model)[0]

    assert priced_as("gpt-4o") == "gpt-4o"
    assert priced_as("gpt-4o-2024-08-06") == "gpt-4o*"
    assert priced_as("gpt-4o-mini-2024-07-18") == "gpt-4o-mini*"
    assert priced_as("gpt-4o-mini") == "gpt-4o-mini*"  # the empty rest matches too
    assert priced_as("gpt-3.5-turbo") == "gpt-*"
    assert priced_as("o3") == "*"
    assert priced_as("GPT-4o") == "*"  # names are matched exactly: case counts


def test_without_a_catch_all_a_model_no_entry_matches_is_refused() -> None:
    pricer = book(**{"gpt-4o": GPT_4O, "gpt-4o-*": GPT_4O})

    with pytest.raises(UnknownModelError, match="'gpt-4'"):
        pricer.price(ModelUsage("gpt-4", 1, 1))
    with pytest.raises(UnknownModelError):
        pricer.estimate("claude-sonnet-4-5", 1, 1)


def test_default_is_not_a_catch_all_any_more_and_says_what_to_write() -> None:
    with pytest.raises(PriceBookError) as refused:
        book(**{"gpt-4o": GPT_4O, "default": CHEAP})

    message = str(refused.value)
    assert message.startswith("price book: model 'default': ")
    assert '[models."*"]' in message
    assert '[models."gpt-4o-*"]' in message


def test_a_book_file_with_default_fails_to_load(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('version = "v"\n[models.default]\ninput = 1\noutput = 1\n')

    with pytest.raises(PriceBookError, match="model 'default'"):
        PriceBook.from_file(path)


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("gpt-*-mini", "a * may only end a name"),
        ("**", "a * may only end a name"),
        ("gpt 4o*", "printable ASCII characters without spaces"),
        ("gpt-4o-é*", "printable ASCII characters without spaces"),
    ],
)
def test_an_invalid_pattern_fails_naming_it(name: str, named: str) -> None:
    with pytest.raises(PriceBookError, match=re.escape(f"model {name!r}")) as refused:
        book(**{name: GPT_4O})

    assert named in str(refused.value)


def test_the_catch_all_is_the_public_constant_and_describe_shows_patterns() -> None:
    described = book(**{"gpt-4o-*": GPT_4O, DEFAULT_MODEL: CHEAP}).describe()

    assert DEFAULT_MODEL == "*"
    assert list(described["models"]) == ["gpt-4o-*", "*"]


# -- the rule, as a property --------------------------------------------------------------

_ALPHABET = "ab-"
names = st.text(_ALPHABET, min_size=1, max_size=5)
entries = st.lists(
    st.one_of(names, st.text(_ALPHABET, max_size=4).map(lambda prefix: prefix + "*")),
    min_size=1,
    max_size=8,
    unique=True,
)


def _expected(entries: list[str], model: str) -> str | None:
    """The rule, spelt out: the model's own entry, else the longest matching pattern."""
    if model in entries:
        return model
    matching = [e for e in entries if e.endswith("*") and model.startswith(e[:-1])]
    return max(matching, key=len, default=None)


@given(entries, names)
def test_the_entry_pricing_a_model_follows_the_rule(entries: list[str], model: str) -> None:
    # Each entry has rates of its own (its position), so the price says which one applied.
    pricer = book(**{e: {"input": i, "output": 0} for i, e in enumerate(entries, start=1)})
    expected = _expected(entries, model)

    if expected is None:
        with pytest.raises(UnknownModelError):
            pricer.price(ModelUsage(model, 1_000_000, 0))
        return
    quote = pricer.price(ModelUsage(model, 1_000_000, 0))
    assert (quote.priced_as, quote.credits) == (expected, entries.index(expected) + 1)


@given(entries, names, st.text(_ALPHABET, max_size=4))
def test_adding_a_pattern_never_reprices_a_model_with_its_own_entry(
    entries: list[str], model: str, prefix: str
) -> None:
    listed = [*entries, model] if model not in entries else entries
    rates = {e: {"input": 1, "output": 1} for e in listed}
    before = book(**rates).rates_for(model)

    after = book(**{**rates, prefix + "*": {"input": 7, "output": 7}}).rates_for(model)

    assert after == before == (model, before[1])
