"""What may be written together with an account change, in one commit.

Each store writes each record kind with one writer and one conflict rule (see
:class:`tokenplans.ports.Commit`); a new kind is a new value here plus one writer per store.
"""

from __future__ import annotations

from .ledger import DebitReceipt
from .payments import HandledEvent, Payment

#: A record written atomically with an account change.
Record = DebitReceipt | Payment | HandledEvent
