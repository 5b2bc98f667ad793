"""Model-call prices from the maintained table of the ``genai-prices`` package, offline."""

from .pricer import GenaiPricesPricer, table_version

__all__ = ["GenaiPricesPricer", "table_version"]
