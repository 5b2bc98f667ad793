"""A stand-in for ``time.monotonic`` that moves only when a test says so."""

from __future__ import annotations


class FakeMonotonic:
    """Call it for the time; add to ``now`` to let time pass."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
