"""What lapses at its own instant: an account's open holds today, its credit lots next.

Expiry is lazy: nothing runs at an expiry instant. The roll-forward (``_rules/expiry``)
lapses everything due by now, each at its own instant and in time order with the period
resets and term expiries, so an account read late ends where one touched at every
instant would. Each kind of expiring thing describes itself as an :class:`Expiry`; they
are read together, with one port call (:meth:`AccountStore.outstanding`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from .accounts import Account
from .holds import Hold
from .ledger import Change
from .records import Record


@attrs.frozen
class Outstanding:
    """What an account has open that lapses at its own instant, as stored: its open holds
    (past their expiry or not), oldest first. A new kind of expiring thing (credit lots)
    is a field here, read by the same port call."""

    holds: tuple[Hold, ...] = ()


@attrs.frozen
class Expiry:
    """One thing due to lapse at ``at``: how its lapse changes the account (``lapse``, a
    rule entering its ledger entry) and what it writes with the change (``writes``).
    Things due at one instant lapse in ``key`` order (``("hold", caller, id)`` for a
    hold: the kind first, so kinds keep a fixed order among themselves)."""

    at: datetime
    key: tuple[str, ...]
    lapse: Callable[[Account], Change]
    writes: tuple[Record, ...] = ()
