"""The account snapshot and a ledger entry's facts at the edge: their JSON and their
schema, from the core's fields.

Both come from one list, :data:`USAGE_FIELDS`: the attrs fields of
:class:`tokenplans.Usage`, the subject last (the original service's answer had none, so its own
fields come first), each field's schema chosen by its type. A new snapshot field on
``Usage`` therefore shows in every usage answer, in ledger entries and in the document
without an edit here. Times are ISO 8601 UTC with a ``Z`` suffix (``2026-01-15T12:00:00Z``).

A ledger entry's facts (:data:`tokenplans.ports.FACT_CLASSES`) show flattened, each
field ``null`` on an entry whose kind has none: a new facts class shows in the ledger and
its schema without an edit here either.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from tokenplans import EntryFacts, Usage
from tokenplans.ports import FACT_CLASSES, facts_json

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
    bool: {"type": "boolean"},
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


def _fact_properties() -> dict[str, Mapping[str, Any]]:
    properties: dict[str, Mapping[str, Any]] = {}
    for facts in FACT_CLASSES:
        hints = typing.get_type_hints(facts)
        for field in attrs.fields(facts):
            hint = hints[field.name]
            (plain,) = [arg for arg in typing.get_args(hint) if arg is not type(None)] or [hint]
            schema = nullable(_SCHEMA_OF_TYPE[plain])
            if properties.setdefault(field.name, schema) != schema:
                raise TypeError(f"two facts classes disagree on the type of {field.name!r}")
    return properties


#: The schema of every facts field, nullable (an entry whose kind has none shows null).
ENTRY_FACT_PROPERTIES: Mapping[str, Mapping[str, Any]] = _fact_properties()


def entry_facts_json(facts: EntryFacts | None) -> dict[str, Any]:
    """The fields an entry's facts set (the others show ``null``)."""
    shown = facts_json(facts)
    return {} if shown is None else {name: _json(value) for name, value in shown.items()}
