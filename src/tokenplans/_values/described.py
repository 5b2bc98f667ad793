"""What a value's field means to a reader outside Python: a description and the bounds
its type does not say, attached to the attrs field as metadata.

The core states these facts once, beside the field; an adapter that shows the value (the
HTTP API's JSON Schema, its body parser) reads them from ``attrs.fields``. Nothing here
checks a value: the core's own checks (:mod:`.limits`) do, with the same bounds.
"""

from __future__ import annotations

from typing import Any

import attrs

#: The attrs metadata key a :class:`Described` is stored under.
DESCRIBED = "tokenplans.described"


@attrs.frozen
class Described:
    """A field's description and bounds: ``minimum``/``maximum`` for a number,
    ``min_length``/``max_length`` for a text. ``None`` says nothing."""

    description: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    max_length: int | None = None


def described(
    description: str | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
) -> dict[str, Any]:
    """The metadata of an ``attrs.field``: ``attrs.field(metadata=described(...))``."""
    return {DESCRIBED: Described(description, minimum, maximum, min_length, max_length)}


def description_of(field: attrs.Attribute[Any]) -> Described:
    """What ``field`` says of itself (an empty :class:`Described` when nothing)."""
    found = field.metadata.get(DESCRIBED)
    return found if isinstance(found, Described) else Described()
