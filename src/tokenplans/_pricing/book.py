"""The price book: credits per million tokens by model, from a TOML or JSON file.

The format and its rules are in docs/pricing.md. A book is validated whole when it is
loaded, so a typo fails at start-up naming the model and field, never on a bill.

A model is priced by its own entry, else by the longest pattern (a name ending in
``*``) it starts with; ``"*"`` alone is the pattern every model starts with. There is no
other fallback: a catch-all is an entry a reader of the book sees, spelt like the
patterns it yields to, and a book without one refuses a model it does not price.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from tokenplans._values.model_usage import (
    MAX_PRICE_VERSION_LENGTH,
    ModelUsage,
    check_model_name,
)
from tokenplans.errors import InvalidRequestError, PriceBookError, UnknownModelError

from .quotes import (
    DEFAULT_MODEL_PATTERN,
    Quote,
    Rates,
    credits_for,
    estimate_by_pricing,
    parse_rate,
)

#: The entry that prices every model no other entry matches: the pattern with an empty
#: prefix, so it loses to any more specific one.
DEFAULT_MODEL = DEFAULT_MODEL_PATTERN
#: What a pattern ends in: ``"gpt-4o-*"`` matches every name that starts ``gpt-4o-``.
WILDCARD = "*"
#: What the catch-all was called before it was a pattern; refused, with the fix.
_FORMER_DEFAULT = "default"
_TOP_LEVEL = frozenset({"version", "models"})
_REQUIRED_RATES = ("input", "output")
#: Each optional rate and the rate it falls back to when unset.
_FALLBACKS = {"cache_read": "input", "cache_write": "input", "reasoning": "output"}


def _frozen_rates(models: Mapping[str, Rates]) -> Mapping[str, Rates]:
    return MappingProxyType(dict(models))


def _check_version(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    _version(value)


def _check_models(
    _instance: object, _attribute: attrs.Attribute[Mapping[str, Rates]], value: Mapping[str, Rates]
) -> None:
    if not value:
        raise PriceBookError('price book: field "models": needs at least one [models."name"] table')
    for name, rates in value.items():
        _name(name)
        if not isinstance(rates, Rates):
            raise PriceBookError(f"price book: model {name!r}: expected Rates, got {rates!r}")


def _longest_first(models: Mapping[str, Rates]) -> tuple[str, ...]:
    """The book's patterns, the longest (the most specific) first."""
    return tuple(
        sorted((name for name in models if name.endswith(WILDCARD)), key=len, reverse=True)
    )


@attrs.frozen
class PriceBook:
    """A pricer from a price book. Build one with :meth:`from_file` or
    :meth:`from_mapping`; both validate everything first."""

    version: str = attrs.field(validator=_check_version)
    models: Mapping[str, Rates] = attrs.field(converter=_frozen_rates, validator=_check_models)
    _patterns: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_patterns", _longest_first(self.models))

    @classmethod
    def from_mapping(cls, book: Mapping[str, Any]) -> PriceBook:
        """A book from parsed TOML or JSON: ``{"version": ..., "models": {name: rates}}``."""
        if not isinstance(book, Mapping):
            raise PriceBookError(f"price book: expected a table, got {book!r}")
        unknown = sorted(set(book) - _TOP_LEVEL, key=str)
        if unknown:
            raise PriceBookError(f"price book: unknown field(s) {unknown}")
        version, models = _version(book.get("version")), book.get("models")
        if not isinstance(models, Mapping) or not models:
            raise PriceBookError(
                'price book: field "models": needs at least one [models."name"] table'
            )
        return cls(
            version=version,
            models={_name(name): _rates(name, entry) for name, entry in models.items()},
        )

    @classmethod
    def from_file(cls, path: str | Path) -> PriceBook:
        """A book from a ``.toml`` or ``.json`` file. Numbers with a fraction are read as
        decimals straight from the file's text, never through binary floats."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise PriceBookError(f"cannot read price book {str(path)!r}: {error}") from error
        suffix = path.suffix.lower()
        try:
            if suffix == ".toml":
                data: Any = tomllib.loads(text, parse_float=Decimal)
            elif suffix == ".json":
                data = json.loads(text, parse_float=Decimal)
            else:
                raise PriceBookError(f"price book {str(path)!r} must end in .toml or .json")
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
            raise PriceBookError(f"price book {str(path)!r} does not parse: {error}") from error
        return cls.from_mapping(data)

    def rates_for(self, model: str) -> tuple[str, Rates]:
        """The entry pricing ``model`` and its rates: the model's own entry, else the
        longest pattern it starts with (``"*"``, if present, matches every model), else
        :class:`UnknownModelError`."""
        if model in self.models and not model.endswith(WILDCARD):
            return model, self.models[model]
        for pattern in self._patterns:
            if model.startswith(pattern[:-1]):
                return pattern, self.models[pattern]
        raise UnknownModelError(model)

    def price(self, usage: ModelUsage) -> Quote:
        priced_as, rates = self.rates_for(usage.model)
        return Quote(
            model=usage.model,
            credits=credits_for(rates.cost(usage)),
            price_version=self.version,
            priced_as=priced_as,
            rates=rates,
        )

    def estimate(self, model: str, input_tokens: int, max_output_tokens: int) -> Quote:
        return estimate_by_pricing(self.price, model, input_tokens, max_output_tokens)

    def describe(self) -> Mapping[str, Any]:
        """The book with every fallback filled in: the rates each model is charged."""
        return {
            "kind": "price_book",
            "version": self.version,
            "unit": "credits per million tokens",
            "models": {name: rates.as_dict() for name, rates in self.models.items()},
        }


def _version(version: object) -> str:
    if version is None:
        raise PriceBookError('price book: field "version" is required, e.g. version = "2026-12-01"')
    if not isinstance(version, str):
        raise PriceBookError(
            f'price book: field "version": must be a quoted string, e.g. version = "2026-12-01"; '
            f"got {version!r}"
        )
    if not 1 <= len(version) <= MAX_PRICE_VERSION_LENGTH or not version.isprintable():
        raise PriceBookError(
            f'price book: field "version": must be 1-{MAX_PRICE_VERSION_LENGTH} printable '
            f"characters, got {version!r}"
        )
    return version


def _name(name: object) -> str:
    if name == _FORMER_DEFAULT:
        raise PriceBookError(
            f'price book: model {name!r}: an unlisted model is not priced at "default": '
            'to price every model no other entry matches at these rates, name the entry "*" '
            '([models."*"]); to price a family of names (gpt-4o-2024-08-06...), end an '
            'entry in * ([models."gpt-4o-*"]); or delete it to refuse unlisted models'
        )
    where = f"price book: model {name!r}"
    try:
        if not isinstance(name, str) or WILDCARD not in name:
            return check_model_name(name, "name")
        prefix = name.removesuffix(WILDCARD)
        if WILDCARD in prefix:
            raise PriceBookError(f"{where}: a * may only end a name (a prefix pattern)")
        if prefix:
            check_model_name(prefix, "a pattern's text before its *")
    except InvalidRequestError as error:
        raise PriceBookError(f"{where}: {error}") from None
    return name


def _rates(name: str, entry: object) -> Rates:
    where = f"price book: model {name!r}"
    if not isinstance(entry, Mapping):
        raise PriceBookError(f"{where}: expected a table of rates, got {entry!r}")
    unknown = sorted(set(entry) - {*_REQUIRED_RATES, *_FALLBACKS}, key=str)
    if unknown:
        raise PriceBookError(
            f"{where}: unknown field(s) {unknown} "
            "(known: input, output, cache_read, cache_write, reasoning)"
        )
    missing = [field for field in _REQUIRED_RATES if field not in entry]
    if missing:
        raise PriceBookError(f"{where}: field {missing[0]!r} is required")
    rates = {
        field: parse_rate(value, f"{where}, field {field!r}") for field, value in entry.items()
    }
    for field, fallback in _FALLBACKS.items():
        rates.setdefault(field, rates[fallback])
    return Rates(**rates)
