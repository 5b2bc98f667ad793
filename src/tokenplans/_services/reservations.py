"""What a ``holding`` block does with its hold, shared by the sync and async services.

A block is one request. Its hold may be one this request placed, or, when the hold id
names a hold another request placed, a duplicate:

- an open hold means the first request is still in flight (or its process died and the
  hold waits for its expiry): :class:`RequestInProgressError`, before the block runs;
- a closed hold means it finished: :class:`AlreadyProcessedError`, before the block runs;
- unless the caller asked to handle replays itself (``on_replay="call"``): the block then
  runs with ``reservation.replayed`` true, and must not call the model again.

Leaving the block closes only a hold this request placed: with what was settled, else
with what the block reported as it went (a stream cut short still pays for what it
delivered), else released. A duplicate never settles or releases the first's hold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Literal

import attrs

from tokenplans._values.holds import Hold
from tokenplans._values.model_usage import ModelUsage
from tokenplans.errors import (
    AlreadyProcessedError,
    InvalidRequestError,
    RequestInProgressError,
)

#: What a ``holding`` block does when its hold id names a hold another request placed.
OnReplay = Literal["refuse", "call"]
ON_REPLAY_CHOICES: tuple[OnReplay, ...] = ("refuse", "call")

#: The longest ``Retry-After`` a request in progress suggests: the first request will
#: usually finish well before its hold expires.
MAX_RETRY_AFTER_SECONDS = 5


def check_on_replay(on_replay: object) -> OnReplay:
    if on_replay not in ON_REPLAY_CHOICES:
        raise InvalidRequestError(f"on_replay must be 'refuse' or 'call', got {on_replay!r}")
    return on_replay


def admit(
    reserve: Callable[[], Hold], on_replay: OnReplay, now: Callable[[], datetime]
) -> ReservationState:
    """Reserve for a block, refusing a duplicate unless ``on_replay`` is ``"call"``."""
    try:
        hold = reserve()
    except AlreadyProcessedError as done:
        # The error types its hold by the facts it carries (tokenplans.errors imports
        # nothing); the core always raises it with a Hold.
        if on_replay == "refuse" or not isinstance(done.hold, Hold):
            raise
        return ReservationState(attrs.evolve(done.hold, replayed=True), placed_here=False)
    if hold.replayed and on_replay == "refuse":
        raise RequestInProgressError(hold, retry_after(hold, now()))
    return ReservationState(hold, placed_here=not hold.replayed)


def retry_after(hold: Hold, now: datetime) -> int:
    """Seconds a duplicate should wait: until the hold expires, at most a few."""
    left = (hold.expires_at - now).total_seconds()
    return max(1, min(MAX_RETRY_AFTER_SECONDS, math.ceil(left)))


@attrs.define
class ReservationState:
    """A block's hold, whether this request placed it, and what it reported so far."""

    hold: Hold
    placed_here: bool
    reported_amount: int | None = None
    reported_usage: ModelUsage | None = None

    @property
    def replayed(self) -> bool:
        return not self.placed_here

    def report(self, amount: int | None, usage: ModelUsage | None) -> None:
        """Record what the call has used so far (cumulative: each report replaces the
        last), to be settled if the block ends without an explicit settle."""
        if (amount is None) == (usage is None):
            raise InvalidRequestError("report takes an amount or a usage: exactly one of them")
        if not self.placed_here:
            raise InvalidRequestError("a replayed request reports nothing: it did not call")
        self.reported_amount, self.reported_usage = amount, usage

    def closing(self) -> tuple[int | None, ModelUsage | None] | None:
        """How leaving the block closes the hold: ``(amount, usage)`` to settle with (both
        ``None`` to release), or ``None`` to leave it alone (closed already, or not
        this request's)."""
        if not self.placed_here or not self.hold.is_open:
            return None
        return self.reported_amount, self.reported_usage
