"""Strict request parsing: JSON objects with known fields of exact JSON types.

Deliberately tiny instead of a validation library: four bodies with one to three fields
each. Every refusal is a :class:`tokenplans.InvalidRequestError` (-> 422) naming the
field, so a client learns what to fix. ``true`` is not an integer here, ``"5"`` is not 5
and ``5.0`` is not 5: a token count or a flag arrives exactly as documented, or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
from starlette.requests import Request

from tokenplans import InvalidRequestError

_JSON_TYPE_NAMES = {int: "an integer", bool: "a boolean", str: "a string"}


@attrs.frozen
class Field:
    """One body field: its Python type (``int``, ``bool`` or ``str``) and whether it must
    be present. An optional field may also be ``null``, which reads as absent."""

    kind: type
    required: bool = True


def _has_type(value: object, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


async def read_json(request: Request) -> object:
    """The body parsed as JSON, or 422. The app's body limit applies while reading."""
    body = await request.body()
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidRequestError(f"request body is not valid JSON: {error}") from None


async def read_object(request: Request, fields: Mapping[str, Field]) -> dict[str, Any]:
    """The body as a JSON object holding only ``fields``, each of its declared type."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidRequestError("request body must be a JSON object")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InvalidRequestError(f"unknown field(s): {', '.join(unknown)}")
    parsed: dict[str, Any] = {}
    for name, field in fields.items():
        value = data.get(name)
        if value is None:
            if field.required:
                raise InvalidRequestError(f"{name} is required")
            continue
        if not _has_type(value, field.kind):
            raise InvalidRequestError(f"{name} must be {_JSON_TYPE_NAMES[field.kind]}")
        parsed[name] = value
    return parsed


def check_query(request: Request, allowed: frozenset[str]) -> None:
    """Refuse query parameters the route does not take, as unknown body fields are."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise InvalidRequestError(f"unknown query parameter(s): {', '.join(unknown)}")


def query_int(request: Request, name: str, default: int) -> int:
    """An optional non-negative integer query parameter, or 422."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > len(str(2**63)):
        raise InvalidRequestError(f"{name} must be a positive integer")
    return int(raw)
