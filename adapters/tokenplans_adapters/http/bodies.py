"""Strict request parsing: JSON objects with known fields of exact JSON types.

Deliberately tiny instead of a validation library: a handful of bodies of one to four
fields, most of them the core's commands read by :class:`~.shapes.Body`. Every refusal
is a :class:`tokenplans.InvalidRequestError` (-> 422) naming the field, so a client
learns what to fix. ``true`` is not an integer here, ``"5"`` is not 5
and ``5.0`` is not 5: a token count or a flag arrives exactly as documented, or not at all.

Every body that is read as JSON goes through :func:`parse_json`, the one place where any
body, however crafted, becomes a value or a 4xx: a present ``Content-Type`` must be JSON
(415 otherwise), nesting and number lengths are bounded before Python's parser runs (it
would raise ``RecursionError`` or ``ValueError`` past its own limits), and anything the
parser refuses is a 422.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs
from starlette.requests import Request

from tokenplans import InvalidRequestError

from .refusals import UnsupportedMediaTypeError, escaped

_JSON_TYPE_NAMES = {
    int: "an integer",
    bool: "a boolean",
    str: "a string",
    dict: "an object",
    list: "an array",
}

#: Our bodies nest one level and a payment provider's webhook about five; anything this deep is not
#: a request of ours, and Python's parser recurses once per level.
MAX_JSON_DEPTH = 32
#: Token counts fit in 19 digits; Python refuses to convert more than 4,300.
MAX_JSON_NUMBER_DIGITS = 100
#: A ledger cursor is a number of at most 18 digits; longer is refused before the service.
MAX_CURSOR_LENGTH = 64

# Possessive quantifiers throughout: every scan below is linear, whatever the text.
_STRING = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
#: The text up to the first string that never ends, where the parser stops reading.
_UP_TO_AN_OPEN_STRING = re.compile(rf'(?:[^"]++|{_STRING})*+')
_STRING_LITERAL = re.compile(_STRING)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]++")
_LONG_DIGIT_RUN = re.compile(rf"[0-9]{{{MAX_JSON_NUMBER_DIGITS + 1}}}")
#: Where a lone surrogate may come from: a ``\\uD800``-``\\uDFFF`` escape, or one
#: decoded from the bytes as they are (UTF-8 that encodes a surrogate).
_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@attrs.frozen
class Field:
    """One body field: its Python type (``int``, ``bool``, ``str``, or ``dict`` for an
    object its handler reads further) and whether it must be present. An optional field
    may also be ``null``, which reads as absent."""

    kind: type
    required: bool = True


def _has_type(value: object, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def require_json_content_type(request: Request) -> None:
    """415 unless the ``Content-Type`` is JSON (``application/json`` or ``*/*+json``).

    A missing (or blank) header is accepted: ``curl -d`` without ``-H`` sends none,
    and the body is still parsed as JSON."""
    declared = request.headers.get("content-type", "")
    if not declared.strip():
        return
    media_type = declared.partition(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaTypeError(declared)


def _text_of(raw: bytes) -> str | None:
    """The text ``json.loads`` would read from ``raw`` (it detects UTF-8, -16 and -32)."""
    try:
        return raw.decode(json.detect_encoding(raw), "surrogatepass")
    except UnicodeDecodeError:
        return None


def _might_exceed_limits(text: str) -> bool:
    # The common case in constant passes: too few brackets to nest deep, no long digits.
    brackets = text.count("[") + text.count("{")
    return brackets > MAX_JSON_DEPTH or _LONG_DIGIT_RUN.search(text) is not None


def _nesting_depth(brackets: str) -> int:
    """How deep ``brackets`` (only ``[]{}``) nest: exact for JSON, and otherwise never
    less than the parser would recurse before giving up. Only C-speed string passes."""
    peeled = brackets.replace("{", "[").replace("}", "]")  # the parser recurses on either
    for level in range(MAX_JSON_DEPTH + 1):
        shorter = peeled.replace("[]", "")  # the innermost pairs: one level
        if len(shorter) == len(peeled):
            # No pair left: what remains is "]]][[[", each "[" still open on top of the
            # levels peeled so far (empty for JSON).
            return level + len(peeled.lstrip("]"))
        peeled = shorter
    return MAX_JSON_DEPTH + 1


def check_json_limits(text: str) -> None:
    """422 when ``text`` nests deeper than :data:`MAX_JSON_DEPTH` or holds a number longer
    than :data:`MAX_JSON_NUMBER_DIGITS` digits. Linear, and never recursive.

    Brackets and digits inside string literals do not count. On text that is not JSON
    the counts may be too high, never lower than what the parser reaches before it gives
    up: it reads the same tokens from the left, and stops at a string that never ends."""
    if not _might_exceed_limits(text):
        return
    read = _UP_TO_AN_OPEN_STRING.match(text)
    bare = _STRING_LITERAL.sub('""', read.group() if read else "")
    if _LONG_DIGIT_RUN.search(bare):
        raise InvalidRequestError(
            f"a number in the request body has more than {MAX_JSON_NUMBER_DIGITS} digits"
        )
    if _nesting_depth(_NOT_BRACKETS.sub("", bare)) > MAX_JSON_DEPTH:
        raise InvalidRequestError(f"request body nests deeper than {MAX_JSON_DEPTH} levels")


def check_raw_json_limits(raw: bytes) -> None:
    """:func:`check_json_limits` for a body another layer parses itself (the webhook's,
    whose signature covers its bytes). Bytes that are not text are left to that layer:
    ``json.loads`` refuses them with a ``ValueError`` before it parses anything."""
    text = _text_of(raw)
    if text is not None:
        check_json_limits(text)


def parse_json(raw: bytes) -> object:
    """``raw`` parsed as JSON within the limits above, or 422."""
    text = _text_of(raw)
    if text is None:
        raise InvalidRequestError("request body is not valid JSON: it is not UTF-8 text")
    check_json_limits(text)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise InvalidRequestError(
            f"request body is not valid JSON: {escaped(str(error))}"
        ) from None
    if _MAYBE_SURROGATE.search(text):
        _check_unicode(data)
    return data


def _check_unicode(data: object) -> None:
    """422 when a string of ``data`` (a key or a value, at any depth) holds a lone
    surrogate: JSON's ``\\ud800`` escape decodes to one, but it is no character, and
    no database, log or UTF-8 answer can carry it."""
    pending = [data]
    while pending:  # no recursion: the depth is bounded, but a loop needs no bound
        value = pending.pop()
        texts: list[str] = []
        if isinstance(value, dict):
            texts += [key for key in value if isinstance(key, str)]
            pending += value.values()
        elif isinstance(value, list):
            pending += value
        elif isinstance(value, str):
            texts.append(value)
        for text in texts:
            found = _SURROGATE.search(text)
            if found is not None:
                raise InvalidRequestError(
                    "request body is not valid Unicode: it holds a lone surrogate "
                    f"({escaped(found.group())}), half of a pair that is not there; "
                    "send characters outside the BMP as a \\uD8xx\\uDCxx pair or as UTF-8"
                )


async def read_json(request: Request) -> object:
    """The body parsed as JSON, or 415/422. The app's body limit applies while reading."""
    require_json_content_type(request)
    return parse_json(await request.body())


def check_object(data: object, fields: Mapping[str, Field]) -> dict[str, Any]:
    """``data`` if it is a JSON object holding only ``fields``, each of its declared type
    (``null`` read as absent), or 422 naming the field; the fields given, in order."""
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


async def read_object(request: Request, fields: Mapping[str, Field]) -> dict[str, Any]:
    """The body as a JSON object holding only ``fields``, each of its declared type."""
    return check_object(await read_json(request), fields)


async def read_optional_object(request: Request, fields: Mapping[str, Field]) -> dict[str, Any]:
    """:func:`read_object` for a body that may also be absent: no bytes at all read as
    ``{}`` (``curl -X POST`` without ``-d``). A declared type must still be JSON (415)."""
    require_json_content_type(request)
    if not await request.body():
        return {}
    return await read_object(request, fields)


def check_query(request: Request, allowed: frozenset[str]) -> None:
    """Refuse query parameters the route does not take, as unknown body fields are."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise InvalidRequestError(f"unknown query parameter(s): {', '.join(unknown)}")


def query_text(request: Request, name: str, max_length: int) -> str | None:
    """An optional query parameter of at most ``max_length`` characters, or 422; empty
    reads as absent."""
    raw = request.query_params.get(name) or None
    if raw is not None and len(raw) > max_length:
        raise InvalidRequestError(f"{name} must be at most {max_length} characters")
    return raw


def query_int(request: Request, name: str, default: int) -> int:
    """An optional non-negative integer query parameter, or 422."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > len(str(2**63)):
        raise InvalidRequestError(f"{name} must be a positive integer")
    return int(raw)
