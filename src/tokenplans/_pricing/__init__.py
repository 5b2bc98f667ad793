"""Pricing model calls: provider usage normalised into exclusive counts, and pricers that
turn it into credits exactly (docs/pricing.md)."""

from tokenplans._values.errors import PriceBookError, UnknownModelError
from tokenplans._values.model_usage import MAX_TOKENS, TOKEN_KINDS, ModelUsage

from .book import DEFAULT_MODEL, PriceBook
from .quotes import (
    MAX_RATE,
    TOKENS_PER_RATE,
    UNIT_PRICE_VERSION,
    Pricer,
    Quote,
    Rates,
    UnitPricer,
    credits_for,
    decimal_text,
    estimate_by_pricing,
    parse_rate,
)

__all__ = [
    "DEFAULT_MODEL",
    "MAX_RATE",
    "MAX_TOKENS",
    "TOKENS_PER_RATE",
    "TOKEN_KINDS",
    "UNIT_PRICE_VERSION",
    "ModelUsage",
    "PriceBook",
    "PriceBookError",
    "Pricer",
    "Quote",
    "Rates",
    "UnitPricer",
    "UnknownModelError",
    "credits_for",
    "decimal_text",
    "estimate_by_pricing",
    "parse_rate",
]
