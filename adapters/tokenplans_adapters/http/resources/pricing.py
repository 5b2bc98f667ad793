"""Pricing model calls at the edge: the active prices (``GET /api/pricing``, public like
the catalog), and the ``usage`` a priced consume or settle sends, with its rendering.

A reserve may send an ``estimate`` instead of an amount: ``{model, input_tokens,
max_output_tokens}``, the call's prompt and its ``max_tokens``.

A ``usage`` body is either the normalised object (``model`` and the exclusive counts) or
a provider's own usage object as its SDK returns it, plus ``model`` and ``format``
(``"openai"`` or ``"anthropic"``); the core's normalisers read the latter, so a token is
never counted twice whichever form arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse

from tokenplans import (
    MAX_MODEL_LENGTH,
    MAX_PRICE_VERSION_LENGTH,
    MAX_TOKENS,
    Estimate,
    InvalidRequestError,
    ModelUsage,
    PlanCatalog,
    PricedCall,
)
from tokenplans_adapters.http.openapi import example, nullable, operation, ref, response
from tokenplans_adapters.http.routing import Operation, Resource
from tokenplans_adapters.http.shapes import Nested
from tokenplans_adapters.http.state import state_of

#: A model call's normalised usage fields, from the core's value: the model, then the counts.
MODEL_USAGE_FIELDS: tuple[str, ...] = tuple(field.name for field in attrs.fields(ModelUsage))
_COUNT_FIELDS = MODEL_USAGE_FIELDS[1:]
_REQUIRED_COUNTS = ("input_tokens", "output_tokens")
#: The provider formats a ``usage`` may come in, and the normaliser of each.
FORMATS: Mapping[str, Callable[[Mapping[str, Any], str], ModelUsage]] = {
    "openai": ModelUsage.from_openai,
    "anthropic": ModelUsage.from_anthropic,
}


def usage_from_json(value: object) -> ModelUsage:
    """The ``usage`` of a request body as a :class:`ModelUsage`, or 422 naming the field."""
    if not isinstance(value, dict):
        raise InvalidRequestError("usage must be an object")
    if "format" in value:
        return _provider_usage(value)
    unknown = sorted(set(value) - set(MODEL_USAGE_FIELDS))
    if unknown:
        raise InvalidRequestError(
            f"usage: unknown field(s) {', '.join(unknown)} (a provider's own usage object "
            'needs "format": "openai" or "anthropic")'
        )
    missing = [name for name in ("model", *_REQUIRED_COUNTS) if value.get(name) is None]
    if missing:
        raise InvalidRequestError(f"usage: {missing[0]} is required")
    counts = {name: value[name] for name in _COUNT_FIELDS if value.get(name) is not None}
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int):
            raise InvalidRequestError(f"usage: {name} must be an integer")
    return ModelUsage(model=value["model"], **counts)


def _provider_usage(value: dict[str, Any]) -> ModelUsage:
    fields = dict(value)
    kind, model = fields.pop("format"), fields.pop("model", None)
    if not isinstance(kind, str) or kind not in FORMATS:
        raise InvalidRequestError(
            f"usage: format must be {' or '.join(map(repr, FORMATS))}, got {kind!r}"
        )
    if model is None:
        raise InvalidRequestError("usage: model is required")
    for name in _DETAIL_FIELDS[kind]:
        if not isinstance(fields.get(name), dict | None):
            raise InvalidRequestError(f"usage: {name} must be an object or null")
    return FORMATS[kind](fields, model)


#: The nested objects of each provider's usage, as its SDK returns them: documented (an
#: object or null) and refused as anything else, even the ones no count is read from.
_DETAIL_FIELDS = {
    "openai": [
        "prompt_tokens_details",
        "completion_tokens_details",
        "input_tokens_details",
        "output_tokens_details",
    ],
    "anthropic": ["output_tokens_details", "cache_creation", "server_tool_use"],
}


#: An estimate's fields, from the core's value.
ESTIMATE_FIELDS: tuple[str, ...] = tuple(field.name for field in attrs.fields(Estimate))


def estimate_from_json(value: object) -> Estimate:
    """The ``estimate`` of a reserve body as an :class:`Estimate`, or 422 naming the field."""
    if not isinstance(value, dict):
        raise InvalidRequestError("estimate must be an object")
    unknown = sorted(set(value) - set(ESTIMATE_FIELDS))
    if unknown:
        raise InvalidRequestError(f"estimate: unknown field(s) {', '.join(unknown)}")
    for name in ESTIMATE_FIELDS:
        if value.get(name) is None:
            raise InvalidRequestError(f"estimate: {name} is required")
    for name in ESTIMATE_FIELDS[1:]:
        if isinstance(value[name], bool) or not isinstance(value[name], int):
            raise InvalidRequestError(f"estimate: {name} must be an integer")
    return Estimate(**value)


def model_usage_json(usage: ModelUsage) -> dict[str, Any]:
    """A model call's normalised usage, field by field."""
    return {name: getattr(usage, name) for name in MODEL_USAGE_FIELDS}


def priced_json(priced: PricedCall) -> dict[str, Any]:
    """What a priced answer adds: the credits, the prices' version and the usage priced."""
    return {
        "credits": priced.credits,
        "price_version": priced.price_version,
        "usage": model_usage_json(priced.usage),
    }


async def pricing(request: Request) -> JSONResponse:
    """The active prices, every fallback filled in, rates as exact decimal strings."""
    return JSONResponse(dict(state_of(request).service.pricer.describe()))


# -- OpenAPI ------------------------------------------------------------------------

_TOKENS = {"type": "integer", "minimum": 0, "maximum": MAX_TOKENS}
_MODEL = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_MODEL_LENGTH,
    "pattern": "^[!-~]+$",
    "description": "The model's name as you call it: printable ASCII, no spaces.",
    "examples": ["gpt-4o"],
}
_DETAILS = {"type": ["object", "null"], "additionalProperties": True}
_PROVIDER_COUNTS = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_TOKENS}


def _provider(kind: str, counts: list[str], details: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["format", "model"],
        "additionalProperties": True,
        "description": f"The usage object of {kind}'s API as its SDK returns it, with "
        "`format` and `model` added; normalised as the README's pricing section says.",
        "properties": {
            "format": {"const": kind},
            "model": _MODEL,
            **dict.fromkeys(counts, _PROVIDER_COUNTS),
            **dict.fromkeys(details, _DETAILS),
        },
    }


def _schemas(_catalog: PlanCatalog) -> dict[str, Any]:
    rates = {
        "type": "object",
        "description": "Credits per million tokens of each kind, as exact decimal strings.",
        "additionalProperties": {"type": "string"},
    }
    return {
        "ModelUsage": {
            "type": "object",
            "required": ["model", *_REQUIRED_COUNTS],
            "additionalProperties": False,
            "description": "A model call's tokens, each in exactly one field: `input_tokens` "
            "excludes cache reads and writes, `output_tokens` excludes reasoning.",
            "properties": {
                "model": _MODEL,
                **dict.fromkeys(_REQUIRED_COUNTS, _TOKENS),
                **{name: nullable(_TOKENS) for name in _COUNT_FIELDS[2:]},
            },
        },
        "OpenAIUsage": _provider(
            "openai",
            ["prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "total_tokens"],
            _DETAIL_FIELDS["openai"],
        ),
        "AnthropicUsage": _provider(
            "anthropic",
            [
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
            ],
            _DETAIL_FIELDS["anthropic"],
        ),
        "Estimate": {
            "type": "object",
            "required": list(ESTIMATE_FIELDS),
            "additionalProperties": False,
            "description": "A call not yet made: a hold reserves the most it can cost.",
            "properties": {
                "model": _MODEL,
                "input_tokens": {**_TOKENS, "description": "The prompt's tokens."},
                "max_output_tokens": {
                    **_TOKENS,
                    "description": "The most it may answer (the request's `max_tokens`).",
                },
            },
        },
        "ModelUsageInput": {
            "description": "A model call's usage as a request sends it: normalised "
            "(`ModelUsage`), or a provider's own usage object.",
            "oneOf": [ref("ModelUsage"), ref("OpenAIUsage"), ref("AnthropicUsage")],
        },
        "Pricing": {
            "type": "object",
            "required": ["kind", "version", "unit", "models"],
            "properties": {
                "kind": {"type": "string", "enum": ["unit", "price_book", "genai-prices"]},
                "version": {
                    "type": "string",
                    "maxLength": MAX_PRICE_VERSION_LENGTH,
                    "description": "Recorded as `price_version` on every priced entry.",
                },
                "unit": {"const": "credits per million tokens"},
                "credits_per_usd": {"type": "string"},
                "models": {
                    "type": "object",
                    "description": (
                        "Rates by model name. A name ending in `*` is a pattern: a model "
                        "without an entry of its own is priced by the longest pattern it "
                        "starts with (`*` alone matches every model); else it is refused."
                    ),
                    "additionalProperties": rates,
                },
            },
        },
    }


#: How a request body reads the model call it is priced from, and its schema: an
#: ``estimate`` of a reserve, the ``usage`` of a consume or settle.
CALL_VALUES: Mapping[type, Nested] = {
    Estimate: Nested(ref("Estimate"), estimate_from_json),
    ModelUsage: Nested(ref("ModelUsageInput"), usage_from_json),
}

#: The model a documented example names: one every price table knows.
EXAMPLE_MODEL = "gpt-4o"

#: A model call's ``usage`` in each form a consume or settle may send it, as named request
#: examples (the body is ``{"usage": ...}``); small enough for the free plan's quota.
USAGE_EXAMPLES: Mapping[str, dict[str, Any]] = {
    "usage": example(
        "A model call's usage, normalised",
        {"usage": {"model": EXAMPLE_MODEL, "input_tokens": 250, "output_tokens": 180}},
    ),
    "openai": example(
        "OpenAI's usage object, as its SDK returns it",
        {
            "usage": {
                "format": "openai",
                "model": EXAMPLE_MODEL,
                "prompt_tokens": 250,
                "completion_tokens": 180,
                "total_tokens": 430,
                "prompt_tokens_details": {"cached_tokens": 0},
            }
        },
    ),
    "anthropic": example(
        "Anthropic's usage object, as its SDK returns it",
        {
            "usage": {
                "format": "anthropic",
                "model": "claude-sonnet-4-5",
                "input_tokens": 250,
                "output_tokens": 180,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            }
        },
    ),
}

#: What a priced answer (consume, reserve, settle) adds to its schema.
PRICED_PROPERTIES: Mapping[str, Any] = {
    "credits": {
        "type": "integer",
        "minimum": 0,
        "description": "Credits the call was priced at (priced requests only).",
    },
    "price_version": {
        "type": "string",
        "description": "The version of the prices used (priced requests only).",
    },
    "usage": {**ref("ModelUsage"), "description": "The usage priced, normalised."},
}

RESOURCE = Resource(
    operations=[
        Operation(
            "GET",
            "/api/pricing",
            pricing,
            operation(
                "getPricing",
                "The active prices",
                response(
                    "How model calls are priced into credits: one credit per token "
                    "(`unit`), a price book, or the genai-prices table.",
                    "Pricing",
                ),
                tag="plans",
                secured=False,
            ),
        )
    ],
    schemas=_schemas,
)
