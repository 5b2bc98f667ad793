"""The account snapshot at the edge: its JSON and its schema, from the core's fields.

Both come from one list, :data:`USAGE_FIELDS`: the attrs fields of
:class:`tokenplans.Usage`, the subject last (the original service's answer had none, so its own
fields come first), each field's schema chosen by its type. A new snapshot field on
``Usage`` therefore shows in every usage answer, in ledger entries and in the document
without an edit here. Times are ISO 8601 UTC with a ``Z`` suffix (``2026-01-15T12:00:00Z``).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from tokenplans import Usage

from .openapi import COUNT, TIME, nullable

_LAST = ("subject",)
#: The usage answer's fields, in the order it renders them.
USAGE_FIELDS: tuple[str, ...] = (
    *(field.name for field in attrs.fields(Usage) if field.name not in _LAST),
    *_LAST,
)
#: The snapshot fields a ledger entry shows of the account after it: not the subject
#: (the page's) nor the period (entries are read one account at a time, period aside).
ENTRY_SNAPSHOT_FIELDS: tuple[str, ...] = tuple(
    name for name in USAGE_FIELDS if name not in {"subject", "period_start", "period_end"}
)

#: A field's schema by its Python type; a field of any other type fails at import.
_SCHEMA_OF_TYPE: Mapping[object, Mapping[str, Any]] = {
    str: {"type": "string"},
    int: COUNT,
    datetime: TIME,
    datetime | None: nullable(TIME),
}
_TYPES = typing.get_type_hints(Usage)
#: The usage schema's properties, for every schema that answers a usage.
USAGE_PROPERTIES: Mapping[str, Mapping[str, Any]] = {
    name: _SCHEMA_OF_TYPE[_TYPES[name]] for name in USAGE_FIELDS
}


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``: what JavaScript's ``Date`` and every JSON client read."""
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def _json(value: object) -> object:
    return iso(value) if isinstance(value, datetime) else value


def usage_json(usage: Usage) -> dict[str, Any]:
    """The original service's usage fields, plus the subject and the current period."""
    return {name: _json(getattr(usage, name)) for name in USAGE_FIELDS}


def entry_snapshot_json(usage: Usage) -> dict[str, Any]:
    """What a ledger entry shows of the snapshot after it (:data:`ENTRY_SNAPSHOT_FIELDS`)."""
    return {name: _json(getattr(usage, name)) for name in ENTRY_SNAPSHOT_FIELDS}
