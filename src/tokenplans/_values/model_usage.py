"""What one model call consumed, with each token in exactly one field.

Providers overlap their counts differently (OpenAI's ``prompt_tokens`` includes the cached
tokens and ``completion_tokens`` includes reasoning; Anthropic's ``input_tokens`` leaves
cache reads and writes out), and double counting is the classic billing bug. So usage is
normalised once, into exclusive fields, by the rules in docs/pricing.md.

Also here: what a priced ledger entry records (:class:`PricedCall`), and what a hold is
reserved from before a call (:class:`Estimate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from tokenplans.errors import InvalidRequestError

#: The most tokens one field may count: far above any single call, far below overflow
#: anywhere (the same bound as a debit's amount).
MAX_TOKENS = 10**12
#: Long enough for routed names like ``accounts/fireworks/models/llama-v3p1-405b-instruct``.
MAX_MODEL_LENGTH = 200

#: The count fields, in the order they are shown and priced.
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")


def check_model_name(model: object, what: str = "model") -> str:
    """``model`` if it is 1-200 printable ASCII characters without spaces, else raise."""
    if (
        not isinstance(model, str)
        or not 1 <= len(model) <= MAX_MODEL_LENGTH
        or not model.isascii()
        or not model.isprintable()
        or any(ch.isspace() for ch in model)
    ):
        raise InvalidRequestError(
            f"{what} must be 1-{MAX_MODEL_LENGTH} printable ASCII characters without spaces, "
            f"got {model!r}"
        )
    return model


def check_token_count(value: object, what: str) -> int:
    """``value`` if it is an int in ``0..MAX_TOKENS`` (bool refused), else raise naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{what} must be a whole number of tokens, got {value!r}")
    if not 0 <= value <= MAX_TOKENS:
        raise InvalidRequestError(f"{what} must be between 0 and {MAX_TOKENS}, got {value}")
    return value


def _model(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    check_model_name(value, attribute.name)


def _count(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    check_token_count(value, attribute.name)


@attrs.frozen
class ModelUsage:
    """One call's tokens by kind. The fields are exclusive: ``input_tokens`` excludes
    cache reads and writes, ``output_tokens`` excludes reasoning, so summing the fields
    counts every token once.

    Build one directly, or from a provider's usage dict with :meth:`from_openai` or
    :meth:`from_anthropic`.
    """

    model: str = attrs.field(validator=_model)
    input_tokens: int = attrs.field(validator=_count)
    output_tokens: int = attrs.field(validator=_count)
    cache_read_tokens: int = attrs.field(default=0, validator=_count)
    cache_write_tokens: int = attrs.field(default=0, validator=_count)
    reasoning_tokens: int = attrs.field(default=0, validator=_count)

    @property
    def total_tokens(self) -> int:
        """Every token the call counted, each once."""
        return sum(self.counts().values())

    def counts(self) -> dict[str, int]:
        """The counts keyed by kind (``input``, ``output``, ``cache_read``, ...)."""
        return {kind: getattr(self, f"{kind}_tokens") for kind in TOKEN_KINDS}

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any], model: str) -> ModelUsage:
        """Normalise an OpenAI ``usage`` dict: chat completions (``prompt_tokens``,
        ``completion_tokens`` and their ``*_details``) or the responses API
        (``input_tokens``, ``output_tokens`` and their ``*_details``).

        OpenAI counts cached tokens inside the prompt and reasoning inside the
        completion, so both are taken out of their totals. Pass an SDK object as
        ``response.usage.model_dump()``.
        """
        usage = _mapping(usage, "openai usage")
        chat = "prompt_tokens" in usage or "completion_tokens" in usage
        responses = "input_tokens" in usage or "output_tokens" in usage
        if chat and responses:
            raise InvalidRequestError(
                "openai usage mixes chat completions fields (prompt_tokens, completion_tokens) "
                "with responses API fields (input_tokens, output_tokens)"
            )
        prompt, completion = ("input", "output") if responses else ("prompt", "completion")
        uncached, cached = _split(usage, prompt, "cached_tokens", "openai usage", required=True)
        answer, reasoning = _split(
            usage, completion, "reasoning_tokens", "openai usage", required=False
        )
        return cls(
            model=check_model_name(model),
            input_tokens=uncached,
            output_tokens=answer,
            cache_read_tokens=cached,
            reasoning_tokens=reasoning,
        )

    @classmethod
    def from_anthropic(cls, usage: Mapping[str, Any], model: str) -> ModelUsage:
        """Normalise an Anthropic ``usage`` dict (``input_tokens``, ``output_tokens``,
        ``cache_read_input_tokens``, ``cache_creation_input_tokens``).

        Anthropic's ``input_tokens`` already leaves cache reads and writes out, so they
        are taken as they are; thinking tokens, when reported in
        ``output_tokens_details.thinking_tokens``, are part of ``output_tokens``.
        """
        usage = _mapping(usage, "anthropic usage")
        answer, thinking = _split(usage, "output", "thinking_tokens", "anthropic usage")
        return cls(
            model=check_model_name(model),
            input_tokens=_required(usage, "input_tokens", "anthropic usage"),
            output_tokens=answer,
            cache_read_tokens=_optional(usage, "cache_read_input_tokens", "anthropic usage"),
            cache_write_tokens=_optional(usage, "cache_creation_input_tokens", "anthropic usage"),
            reasoning_tokens=thinking,
        )


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"{what} must be an object of token counts, got {value!r}")
    return value


def _required(usage: Mapping[str, Any], name: str, what: str) -> int:
    if usage.get(name) is None:
        raise InvalidRequestError(f"{what}: {name} is required")
    return check_token_count(usage[name], f"{what}: {name}")


def _optional(usage: Mapping[str, Any], name: str, what: str, label: str = "") -> int:
    """A count that providers may leave out or send as null: both mean none."""
    value = usage.get(name)
    return 0 if value is None else check_token_count(value, f"{what}: {label or name}")


def _detail(usage: Mapping[str, Any], details: str, name: str, what: str) -> int:
    """A count inside a ``*_details`` object, which may itself be missing or null."""
    table = usage.get(details)
    if table is None:
        return 0
    return _optional(_mapping(table, f"{what}: {details}"), name, what, f"{details}.{name}")


def _split(
    usage: Mapping[str, Any], side: str, part: str, what: str, *, required: bool = True
) -> tuple[int, int]:
    """``{side}_tokens`` split into (the rest, the part its ``{side}_tokens_details``
    reports inside it), refusing a part larger than the whole."""
    whole_name, details = f"{side}_tokens", f"{side}_tokens_details"
    whole = (_required if required else _optional)(usage, whole_name, what)
    inside = _detail(usage, details, part, what)
    if inside > whole:
        raise InvalidRequestError(
            f"{what}: {details}.{part} ({inside}) cannot exceed {whole_name} ({whole}): "
            "it is counted inside it"
        )
    return whole - inside, inside


#: The longest price version a priced entry records (a book's ``version``, a table's).
MAX_PRICE_VERSION_LENGTH = 64


def _price_version(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_PRICE_VERSION_LENGTH
        or not value.isprintable()
    ):
        raise InvalidRequestError(
            f"price_version must be 1-{MAX_PRICE_VERSION_LENGTH} printable characters, "
            f"got {value!r}"
        )


def _credits(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    check_token_count(value, "credits")


@attrs.frozen
class PricedCall:
    """What a priced ledger entry records: the call's normalised ``usage`` (for a hold
    reserved from an estimate, the estimate's prompt as input and its
    ``max_output_tokens`` as output), the ``credits`` charged or held for it, and the
    ``price_version`` of the prices used, so a bill can be explained after they change."""

    usage: ModelUsage
    credits: int = attrs.field(validator=_credits)
    price_version: str = attrs.field(validator=_price_version)


@attrs.frozen
class Estimate:
    """A call not yet made: its ``model``, its prompt's ``input_tokens`` and the most it
    may answer, ``max_output_tokens`` (what the request's ``max_tokens`` says). A hold
    reserved from it holds the most the call can cost."""

    model: str = attrs.field(validator=_model)
    input_tokens: int = attrs.field(validator=_count)
    max_output_tokens: int = attrs.field(validator=_count)

    def as_usage(self) -> ModelUsage:
        """The estimate as the usage a hold's ledger entry records."""
        return ModelUsage(self.model, self.input_tokens, self.max_output_tokens)
