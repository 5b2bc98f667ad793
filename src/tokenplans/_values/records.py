"""What may be written together with an account change, in one commit.

Each store writes each record kind with one writer and one conflict rule (see
:class:`tokenplans.ports.Commit`); a new kind is a new value here plus one writer per store.
"""

from __future__ import annotations

from .events import Event
from .holds import HoldWrite
from .ledger import DebitReceipt
from .payments import HandledEvent, Payment

#: A record written atomically with an account change.
Record = DebitReceipt | Payment | HandledEvent | HoldWrite | Event


def one_write_per_hold(records: tuple[Record, ...]) -> tuple[Record, ...]:
    """The records with one write per hold: a hold expired by the roll-forward and settled
    late in the same commit is written once, from its stored status to its final one."""
    merged: dict[tuple[str, str, str], HoldWrite] = {}
    others: list[Record] = []
    for record in records:
        if not isinstance(record, HoldWrite):
            others.append(record)
            continue
        key = (record.hold.subject, *record.hold.key)
        first = merged.get(key)
        merged[key] = record if first is None else HoldWrite(record.hold, first.previous)
    return (*others, *merged.values())
