"""A pricer over the ``genai-prices`` package's bundled table: US dollars converted to
credits at a configured rate, so a team need not keep a price book by hand.

Only the data bundled with the installed package is used, in a snapshot of its own built
when the pricer is: the package's background updater is never started, nothing is fetched
at run time, and an updater started elsewhere in the process cannot change prices under
a running pricer. The table's version is therefore the package's version, recorded on
every quote; upgrading the package is how prices change.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from fractions import Fraction
from importlib.metadata import version
from typing import Any

from genai_prices import Usage, data
from genai_prices.data_snapshot import DataSnapshot
from genai_prices.types import ModelInfo, ModelPrice, Provider, TieredPrices, calc_unit_price

from tokenplans import ModelUsage, PriceBookError, Quote, Rates, UnknownModelError
from tokenplans.ports import (
    TOKENS_PER_RATE,
    credits_for,
    decimal_text,
    estimate_by_pricing,
    parse_rate,
)

#: The table's per-kind price keys, and the key each falls back to when a model lacks it
#: (the package then prices those tokens as the broader kind, and so do the rates shown).
_PRICE_KEYS = {
    "input": ("input_mtok", None),
    "output": ("output_mtok", None),
    "cache_read": ("cache_read_mtok", "input"),
    "cache_write": ("cache_write_mtok", "input"),
    "reasoning": ("output_reasoning_mtok", "output"),
}
#: Enough digits that multiplying a table price by a token count and dividing by a
#: million never rounds; any rounding would be trapped rather than silently billed.
_EXACT = decimal.Context(prec=120, traps=[decimal.Inexact, decimal.InvalidOperation])


def table_version() -> str:
    """The version of the installed price table, as recorded on quotes."""
    return f"genai-prices {version('genai-prices')}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GenaiPricesPricer:
    """Prices calls from the ``genai-prices`` table at ``credits_per_usd`` credits per US
    dollar (an int or a decimal string, read exactly).

    ``provider_id`` pins the provider whose prices apply (``"openai"``, ``"anthropic"``...;
    by default the table picks it from the model's name). ``listed_models`` are the models
    :meth:`describe` shows; each must be in the table, checked here so a typo fails at
    start-up. ``clock`` gives the instant whose prices apply (the table keeps history).
    """

    def __init__(
        self,
        credits_per_usd: int | str,
        *,
        provider_id: str | None = None,
        listed_models: Iterable[str] = (),
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._credits_per_usd = parse_rate(credits_per_usd, "credits_per_usd")
        if self._credits_per_usd == 0:
            raise PriceBookError("credits_per_usd: must be more than 0")
        self._snapshot = DataSnapshot(providers=data.providers, from_auto_update=False)
        self._provider_id = provider_id
        self._clock = clock
        self.version = table_version()
        if provider_id is not None:
            try:
                self._snapshot.find_provider(None, provider_id, None)
            except LookupError:
                raise PriceBookError(f"provider_id: {provider_id!r} is not in the table") from None
        self._listed = tuple(listed_models)
        for model in self._listed:
            self._find(model)

    def price(self, usage: ModelUsage) -> Quote:
        provider, model = self._find(usage.model)
        with decimal.localcontext(_EXACT):
            usd = model.calc_price(
                _table_usage(usage), provider, genai_request_timestamp=self._clock()
            )
        prompt_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        return Quote(
            model=usage.model,
            credits=credits_for(Fraction(usd.total_price) * self._credits_per_usd),
            price_version=self.version,
            priced_as=f"{provider.id}:{model.id}",
            rates=self._rates(usd.model_price, prompt_tokens),
        )

    def estimate(self, model: str, input_tokens: int, max_output_tokens: int) -> Quote:
        return estimate_by_pricing(self.price, model, input_tokens, max_output_tokens)

    def describe(self) -> Mapping[str, Any]:
        """The table's version, the conversion rate, and the listed models' base rates."""
        models = {}
        for name in self._listed:
            prices = self._find(name)[1].get_prices(self._clock())
            models[name] = self._rates(prices, prompt_tokens=0).as_dict()
        return {
            "kind": "genai-prices",
            "version": self.version,
            "credits_per_usd": decimal_text(self._credits_per_usd),
            "unit": "credits per million tokens",
            "models": models,
        }

    def _find(self, model: str) -> tuple[Provider, ModelInfo]:
        try:
            return self._snapshot.find_provider_model(model, None, self._provider_id, None)
        except LookupError:
            raise UnknownModelError(model) from None

    def _rates(self, prices: ModelPrice, prompt_tokens: int) -> Rates:
        """Credits per million tokens of each kind, at the tier a prompt of
        ``prompt_tokens`` (cached or not) reaches. Fees of other kinds in the table (per
        request, per web search...) are in a quote's credits but not in its rates."""
        usd: dict[str, Fraction] = {}
        for kind, (key, fallback) in _PRICE_KEYS.items():
            price: decimal.Decimal | TieredPrices | None = getattr(prices, key)
            if price is None:
                usd[kind] = usd[fallback] if fallback else Fraction(0)
                continue
            with decimal.localcontext(_EXACT):
                per_million = calc_unit_price(
                    price, TOKENS_PER_RATE, prompt_tokens, TOKENS_PER_RATE
                )
            usd[kind] = Fraction(per_million)
        return Rates(**{kind: rate * self._credits_per_usd for kind, rate in usd.items()})


def _table_usage(usage: ModelUsage) -> Usage:
    """The package counts cache tokens inside ``input_tokens`` and reasoning inside
    ``output_tokens``, splitting them out itself: our exclusive counts, summed back."""
    return Usage(
        input_tokens=usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_tokens=usage.output_tokens + usage.reasoning_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
    )
