"""Rates, quotes and the pricer port: how a usage becomes credits.

Every amount is an exact ``Fraction`` until the very end, where the call's total is
rounded up once (rounding each kind of token separately would overcharge by up to one
credit per kind, and floats drift: see docs/pricing.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

import attrs

from tokenplans._values.model_usage import (
    TOKEN_KINDS,
    ModelUsage,
    check_model_name,
    check_token_count,
)
from tokenplans.errors import PriceBookError

#: Rates are per million tokens, the unit providers publish.
TOKENS_PER_RATE = 10**6
#: No rate above this (credits per million tokens): a guard against unit slips such as
#: per-token prices pasted as per-million ones multiplied up again.
MAX_RATE = 10**12
_DECIMAL_TEXT = re.compile(r"[0-9]{1,15}(\.[0-9]{1,15})?")


def parse_rate(value: object, what: str) -> Fraction:
    """Read a non-negative rate exactly: an int, a ``Decimal``, a decimal string such as
    ``"0.15"``, or a float read through its decimal text (``0.15`` is 15/100, never the
    binary float nearest to it)."""
    if isinstance(value, bool):
        raise PriceBookError(f"{what}: must be a number or a decimal string, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PriceBookError(f"{what}: must be a finite number, got {value!r}")
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PriceBookError(f"{what}: must be a finite number, got {value!r}")
        rate = Fraction(value)
    elif isinstance(value, int) or (isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value)):
        rate = Fraction(value)
    else:
        raise PriceBookError(
            f'{what}: must be a number or a decimal string like "0.15", got {value!r}'
        )
    if rate < 0:
        raise PriceBookError(f"{what}: must not be negative, got {value!r}")
    if rate > MAX_RATE:
        raise PriceBookError(f"{what}: must be at most {MAX_RATE}, got {value!r}")
    return rate


def decimal_text(value: Fraction) -> str:
    """``value`` as exact decimal text (``Fraction(3, 20)`` is ``"0.15"``); a value
    without a finite decimal form is shown as ``"n/d"``."""
    rest, powers = value.denominator, {2: 0, 5: 0}
    for factor in powers:
        while rest % factor == 0:
            rest //= factor
            powers[factor] += 1
    if rest != 1:
        return f"{value.numerator}/{value.denominator}"
    scale = max(powers.values())
    digits = str(abs(value.numerator) * 10**scale // value.denominator).rjust(scale + 1, "0")
    whole, decimals = digits[: len(digits) - scale], digits[len(digits) - scale :].rstrip("0")
    sign = "-" if value < 0 else ""
    return f"{sign}{whole}.{decimals}" if decimals else f"{sign}{whole}"


def _rate(_instance: object, attribute: attrs.Attribute[Fraction], value: Fraction) -> None:
    if not isinstance(value, Fraction) or not 0 <= value <= MAX_RATE:
        raise PriceBookError(f"{attribute.name}: must be a Fraction in 0..{MAX_RATE}: {value!r}")


@attrs.frozen
class Rates:
    """Credits per million tokens of each kind, exactly."""

    input: Fraction = attrs.field(validator=_rate)
    output: Fraction = attrs.field(validator=_rate)
    cache_read: Fraction = attrs.field(validator=_rate)
    cache_write: Fraction = attrs.field(validator=_rate)
    reasoning: Fraction = attrs.field(validator=_rate)

    @classmethod
    def flat(cls, rate: Fraction) -> Rates:
        """The same rate for every kind of token."""
        return cls(rate, rate, rate, rate, rate)

    def cost(self, usage: ModelUsage) -> Fraction:
        """The exact, unrounded credits ``usage`` costs at these rates."""
        total = sum(
            (count * getattr(self, kind) for kind, count in usage.counts().items()), Fraction(0)
        )
        return total / TOKENS_PER_RATE

    def as_dict(self) -> dict[str, str]:
        """The rates as exact decimal strings, keyed by kind (for JSON)."""
        return {kind: decimal_text(getattr(self, kind)) for kind in TOKEN_KINDS}


def credits_for(cost: Fraction) -> int:
    """Whole credits for an exact cost: rounded up, once per call."""
    return math.ceil(cost)


@attrs.frozen
class Quote:
    """What a call costs: whole ``credits``, and what they were computed from.

    ``price_version`` names the price data (recorded on the ledger entry, so a bill can
    be explained after prices change); ``priced_as`` is the entry whose ``rates`` were
    used (the model itself, or ``default``).
    """

    model: str
    credits: int
    price_version: str
    priced_as: str
    rates: Rates


class Pricer(Protocol):
    """Turns a model call's usage into credits. Implementations are immutable once built:
    the same usage always gets the same quote within a process."""

    def price(self, usage: ModelUsage) -> Quote:
        """The credits ``usage`` costs. A model the pricer cannot price raises
        :class:`UnknownModelError` (nothing may be charged then)."""
        ...

    def estimate(self, model: str, input_tokens: int, max_output_tokens: int) -> Quote:
        """The most a call can cost whose prompt is ``input_tokens`` uncached input and
        whose answer is at most ``max_output_tokens`` output or reasoning tokens: what a
        hold reserves before the call. Raises like :meth:`price`."""
        ...

    def describe(self) -> Mapping[str, Any]:
        """The active prices as plain JSON-ready data, for showing to users."""
        ...


def estimate_by_pricing(
    price: Callable[[ModelUsage], Quote], model: str, input_tokens: int, max_output_tokens: int
) -> Quote:
    """The dearer of pricing the whole answer as output or as reasoning.

    Either way the prompt is uncached input; the answer's tokens are split between output
    and reasoning in a way nobody knows before the call, and since cost grows linearly in
    each, one of the two extremes is the most it can cost.
    """
    check_model_name(model)
    check_token_count(input_tokens, "input_tokens")
    check_token_count(max_output_tokens, "max_output_tokens")
    as_output = price(ModelUsage(model, input_tokens, max_output_tokens))
    as_reasoning = price(ModelUsage(model, input_tokens, 0, reasoning_tokens=max_output_tokens))
    return max(as_output, as_reasoning, key=lambda quote: quote.credits)


#: The price version recorded when no price book is configured.
UNIT_PRICE_VERSION = "unit"
#: The entry that matches every model (a price book's catch-all; the unit pricer's one).
DEFAULT_MODEL_PATTERN = "*"


@attrs.frozen
class UnitPricer:
    """No price book: every counted token costs one credit, whatever its kind or model."""

    def price(self, usage: ModelUsage) -> Quote:
        return Quote(
            model=usage.model,
            credits=usage.total_tokens,
            price_version=UNIT_PRICE_VERSION,
            priced_as=DEFAULT_MODEL_PATTERN,
            rates=_UNIT_RATES,
        )

    def estimate(self, model: str, input_tokens: int, max_output_tokens: int) -> Quote:
        return estimate_by_pricing(self.price, model, input_tokens, max_output_tokens)

    def describe(self) -> Mapping[str, Any]:
        return {
            "kind": "unit",
            "version": UNIT_PRICE_VERSION,
            "unit": "credits per million tokens",
            "models": {DEFAULT_MODEL_PATTERN: _UNIT_RATES.as_dict()},
        }


_UNIT_RATES = Rates.flat(Fraction(TOKENS_PER_RATE))
