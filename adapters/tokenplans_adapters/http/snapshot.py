"""The core's values every resource shows: the account snapshot and a hold, as
:class:`~.shapes.Shape` over their attrs classes.

The usage answer is the fields of :class:`tokenplans.Usage`, the subject last (the
original service's answer had none, so its own fields come first). A hold is the fields
of :class:`tokenplans.Hold` but its subject (the account's, already in the answer), its
request fingerprint and what belongs to one answer (``replayed``, ``priced``); its
caller shows as ``placed_by``. A new field on either shows in every answer, in the 409
bodies and in the document without an edit here.

A ledger entry's facts (:data:`tokenplans.ports.FACT_CLASSES`) show flattened, each
field ``null`` on an entry whose kind has none: a new facts class shows in the ledger and
its schema without an edit here either.
"""

from __future__ import annotations

from typing import Any

from tokenplans import EntryFacts, Hold, PlanCatalog, Usage
from tokenplans.ports import FACT_CLASSES, facts_json

from .openapi import nullable
from .shapes import Shape, iso, json_value

__all__ = [
    "ENTRY_FACT_PROPERTIES",
    "ENTRY_SNAPSHOT_FIELDS",
    "HOLD",
    "HOLD_CONFLICT_FIELDS",
    "HOLD_DONE_FIELDS",
    "HOLD_IN_PROGRESS_FIELDS",
    "USAGE",
    "USAGE_ANSWER_PROPERTIES",
    "USAGE_FIELDS",
    "USAGE_PROPERTIES",
    "entry_facts_json",
    "entry_snapshot_json",
    "iso",
    "usage_answer_json",
    "usage_json",
    "usage_with_lots_json",
]

USAGE: Shape[Usage] = Shape(Usage, last=("subject",), omit=("lots",))
#: The whole usage, ``lots`` included (shown only by an account with lots beyond its
#: plan lot: an account with only its plan lot answers exactly as before lots).
_WITH_LOTS: Shape[Usage] = Shape(Usage, last=("subject",))
#: The usage answer's fields, in the order it renders them.
USAGE_FIELDS: tuple[str, ...] = USAGE.names
#: The snapshot fields a ledger entry shows of the account after it: not the subject
#: (the page's) nor the period (entries are read one account at a time, period aside).
ENTRY_SNAPSHOT_FIELDS: tuple[str, ...] = tuple(
    name for name in USAGE_FIELDS if name not in {"subject", "period_start", "period_end"}
)
#: The usage schema's properties, for every schema that answers a usage.
USAGE_PROPERTIES: dict[str, Any] = {
    **USAGE.properties(),
    "lots": {
        **_WITH_LOTS.properties(("lots",))["lots"],
        "description": (
            "The live credit lots, in burn order (the plan lot among them); present only "
            "when the account has lots beyond its plan lot (docs/credit-lots.md)."
        ),
    },
}

HOLD: Shape[Hold] = Shape(
    Hold,
    lead=("hold_id", "caller", "status"),
    omit=("subject", "request", "replayed", "priced", "draws", "usage"),
    rename={"caller": "placed_by"},
)
#: What a 409 ``hold conflict`` shows of the hold as it is (what won).
HOLD_CONFLICT_FIELDS = ("hold_id", "status", "amount", "settled")
#: What a 409 ``already processed`` shows of the closed hold (how the first one ended).
HOLD_DONE_FIELDS = ("hold_id", "status", "settled")
#: What a 409 ``request in progress`` shows of the open hold (until when to wait).
HOLD_IN_PROGRESS_FIELDS = ("hold_id", "expires_at")


def usage_json(usage: Usage) -> dict[str, Any]:
    """The original service's usage fields, plus the subject and the current period."""
    return USAGE.json(usage)


def usage_with_lots_json(usage: Usage) -> dict[str, Any]:
    """The usage: :func:`usage_json`, and the live lots in burn order when there are any
    beyond the plan lot (with only its plan lot an account answers exactly as before
    lots; its numbers are the top-level fields)."""
    shown = USAGE.json(usage)
    if len(usage.lots) > 1:
        shown["lots"] = _WITH_LOTS.json(usage, ("lots",))["lots"]
    return shown


def usage_answer_json(usage: Usage, catalog: PlanCatalog) -> dict[str, Any]:
    """The usage answer (``GET /api/tokens/usage`` and the admin read): the usage fields,
    its lots (:func:`usage_with_lots_json`) and the features of its plan
    (``catalog.features_of``)."""
    return {**usage_with_lots_json(usage), "features": list(catalog.features_of(usage.plan))}


#: The usage answer's schema properties: the usage's and the plan's features.
USAGE_ANSWER_PROPERTIES: dict[str, Any] = {
    **USAGE_PROPERTIES,
    "features": {
        "type": "array",
        "items": {"type": "string"},
        "description": "The features of the account's plan (`features` in the catalog).",
    },
}


def entry_snapshot_json(usage: Usage) -> dict[str, Any]:
    """What a ledger entry shows of the snapshot after it (:data:`ENTRY_SNAPSHOT_FIELDS`)."""
    return USAGE.json(usage, ENTRY_SNAPSHOT_FIELDS)


def _fact_properties() -> dict[str, Any]:
    """Every facts field's schema, ``null`` allowed (an entry whose kind has none)."""
    properties: dict[str, Any] = {}
    for facts in FACT_CLASSES:
        for name, schema in Shape(facts).properties().items():
            shown = schema if {"type": "null"} in schema.get("anyOf", []) else nullable(schema)
            if properties.setdefault(name, shown) != shown:
                raise TypeError(f"two facts classes disagree on the type of {name!r}")
    return properties


#: The schema of every facts field, nullable (an entry whose kind has none shows null).
ENTRY_FACT_PROPERTIES: dict[str, Any] = _fact_properties()


def entry_facts_json(facts: EntryFacts | None) -> dict[str, Any]:
    """The fields an entry's facts set (the others show ``null``)."""
    shown = facts_json(facts)
    return {} if shown is None else {name: json_value(value) for name, value in shown.items()}
