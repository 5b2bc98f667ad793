"""The genai-prices adapter: the maintained table's own numbers, converted exactly, offline.

Expected credits are computed here from the rates the installed table lists (not from
numbers copied off a web page), so the tests keep passing when the table is updated and
fail when the adapter stops pricing what the table says.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from strategies import calls_within_estimates

from tokenplans import ModelUsage, PriceBookError, UnknownModelError

genai_prices = pytest.importorskip("genai_prices")

from genai_prices import data_snapshot  # noqa: E402 - only once the package is known present
from genai_prices.types import TieredPrices  # noqa: E402

from tokenplans_adapters.genai_prices import GenaiPricesPricer, table_version  # noqa: E402

WHEN = datetime(2026, 12, 1, tzinfo=UTC)
CREDITS_PER_USD = 1000


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs with the network gone: pricing must not need it."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("network access is blocked in the pricing tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def pricer() -> GenaiPricesPricer:
    return GenaiPricesPricer(CREDITS_PER_USD, clock=lambda: WHEN)


def table_rates(model: str, prompt_tokens: int) -> dict[str, Fraction]:
    """USD per million tokens of each kind, read from the installed table itself."""
    bundled = data_snapshot.DataSnapshot(
        providers=genai_prices.data.providers, from_auto_update=False
    )
    prices = bundled.find_provider_model(model, None, None, None)[1].get_prices(WHEN)

    def rate(key: str) -> Fraction | None:
        price = getattr(prices, key)
        if isinstance(price, TieredPrices):
            reached = [tier.price for tier in price.tiers if prompt_tokens > tier.start]
            price = reached[-1] if reached else price.base
        return None if price is None else Fraction(price)

    input_rate, output_rate = rate("input_mtok"), rate("output_mtok")
    assert input_rate is not None
    assert output_rate is not None
    return {
        "input": input_rate,
        "output": output_rate,
        "cache_read": rate("cache_read_mtok") or input_rate,
        "cache_write": rate("cache_write_mtok") or input_rate,
        "reasoning": rate("output_reasoning_mtok") or output_rate,
    }


def expected_credits(usage: ModelUsage) -> int:
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    rates = table_rates(usage.model, prompt)
    usd = sum(count * rates[kind] for kind, count in usage.counts().items()) / 10**6
    return math.ceil(usd * CREDITS_PER_USD)


@pytest.mark.parametrize(
    "usage",
    [
        ModelUsage("gpt-4o", 1234, 567, cache_read_tokens=890),
        ModelUsage("gpt-4o-mini", 10**6, 10**6),
        ModelUsage("o3", 2000, 300, cache_read_tokens=5000, reasoning_tokens=4000),
        ModelUsage("claude-sonnet-4-5", 50, 300, cache_read_tokens=8000, cache_write_tokens=2000),
        # Past Anthropic's long-context threshold: every token at the higher tier.
        ModelUsage("claude-sonnet-4-5", 150_000, 1000, cache_read_tokens=60_000),
    ],
    ids=repr,
)
def test_calls_are_priced_at_the_tables_own_rates(
    pricer: GenaiPricesPricer, usage: ModelUsage
) -> None:
    quote = pricer.price(usage)

    assert quote.credits == expected_credits(usage)
    assert quote.credits > 0
    assert quote.price_version == table_version()


def test_the_quote_names_the_table_entry_and_its_rates_in_credits(
    pricer: GenaiPricesPricer,
) -> None:
    quote = pricer.price(ModelUsage("gpt-4o", 1, 1))
    rates = table_rates("gpt-4o", 1)

    assert quote.priced_as == "openai:gpt-4o"
    assert quote.rates.input == rates["input"] * CREDITS_PER_USD
    assert quote.rates.cache_read == rates["cache_read"] * CREDITS_PER_USD


def test_the_table_version_is_the_installed_package_version(pricer: GenaiPricesPricer) -> None:
    assert pricer.version == f"genai-prices {genai_prices.__version__}"
    assert pricer.describe()["version"] == pricer.version


def test_huge_counts_are_converted_exactly() -> None:
    usd_per_million = table_rates("gpt-4o", 10**12)["input"]
    pricer = GenaiPricesPricer("0.001", clock=lambda: WHEN)  # one credit per thousand dollars

    quote = pricer.price(ModelUsage("gpt-4o", 10**12, 0))

    assert quote.credits == math.ceil(usd_per_million * 10**6 * Fraction(1, 1000))


def test_a_model_the_table_lacks_is_refused(pricer: GenaiPricesPricer) -> None:
    with pytest.raises(UnknownModelError, match="no-such-model"):
        pricer.price(ModelUsage("no-such-model", 1, 1))
    with pytest.raises(UnknownModelError):
        pricer.estimate("no-such-model", 1, 1)


def test_a_listed_model_the_table_lacks_fails_at_start_up() -> None:
    with pytest.raises(UnknownModelError, match="gpt-4oo"):
        GenaiPricesPricer(CREDITS_PER_USD, listed_models=["gpt-4o", "gpt-4oo"])


@pytest.mark.parametrize("credits_per_usd", [0, -5, "1e3", "lots", True, Decimal("NaN")])
def test_an_invalid_conversion_rate_fails_at_start_up(credits_per_usd: Any) -> None:
    with pytest.raises(PriceBookError, match="credits_per_usd"):
        GenaiPricesPricer(credits_per_usd)


def test_an_unknown_provider_fails_at_start_up() -> None:
    with pytest.raises(PriceBookError, match="provider_id"):
        GenaiPricesPricer(CREDITS_PER_USD, provider_id="no-such-provider")


def test_a_pinned_provider_prices_its_own_models() -> None:
    pricer = GenaiPricesPricer(CREDITS_PER_USD, provider_id="anthropic", clock=lambda: WHEN)

    assert pricer.price(ModelUsage("claude-sonnet-4-5", 10, 10)).priced_as.startswith("anthropic:")


@pytest.fixture
def emptied_global_table() -> Iterator[None]:
    """What an auto-update elsewhere in the process would do: swap the package's table."""
    data_snapshot.set_custom_snapshot(
        data_snapshot.DataSnapshot(providers=[], from_auto_update=True)
    )
    try:
        yield
    finally:
        data_snapshot.set_custom_snapshot(None)


def test_prices_stay_pinned_to_the_bundled_table_whatever_the_package_is_told_later(
    pricer: GenaiPricesPricer, emptied_global_table: None
) -> None:
    usage = ModelUsage("gpt-4o", 1000, 1000)

    assert pricer.price(usage).credits == expected_credits(usage)


def test_describe_shows_the_conversion_and_the_listed_models() -> None:
    pricer = GenaiPricesPricer("1000", listed_models=["gpt-4o"], clock=lambda: WHEN)
    rates = table_rates("gpt-4o", 0)

    description = pricer.describe()

    assert description["kind"] == "genai-prices"
    assert description["credits_per_usd"] == "1000"
    assert Fraction(description["models"]["gpt-4o"]["output"]) == rates["output"] * 1000


@given(call=calls_within_estimates("o3"))
def test_an_estimate_covers_any_answer_up_to_max_output_tokens(
    call: tuple[int, int, ModelUsage],
) -> None:
    pricer = GenaiPricesPricer(CREDITS_PER_USD, clock=lambda: WHEN)
    input_tokens, max_output, usage = call

    assert pricer.price(usage).credits <= pricer.estimate("o3", input_tokens, max_output).credits


def test_past_a_long_context_threshold_the_whole_prompt_costs_the_higher_tier(
    pricer: GenaiPricesPricer,
) -> None:
    short = pricer.price(ModelUsage("claude-sonnet-4-5", 100_000, 0))
    long = pricer.price(ModelUsage("claude-sonnet-4-5", 300_000, 0))

    assert long.rates.input > short.rates.input
    assert long.credits == math.ceil(300_000 * long.rates.input / 10**6)


def test_the_network_really_is_blocked_here() -> None:
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("example.com", 443))
