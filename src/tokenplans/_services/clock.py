"""The system clock; the settable one for tests is in :mod:`tokenplans.testing`."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """The current time as an aware UTC datetime."""

    def now(self) -> datetime:
        return datetime.now(UTC)
