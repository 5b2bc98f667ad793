"""What the token use cases answer besides a usage or a receipt."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from .accounts import Usage
from .ledger import LedgerEntry


@attrs.frozen
class PlanChange:
    """The result of set-plan: its message ("upgraded to premium with carry-over", "plan
    confirmed", "downgraded to basic") and the usage after."""

    message: str
    usage: Usage


@attrs.frozen
class HistoryPage:
    """Ledger entries newest first; pass ``next_cursor`` back for the next (older) page."""

    entries: Sequence[LedgerEntry]
    next_cursor: str | None
