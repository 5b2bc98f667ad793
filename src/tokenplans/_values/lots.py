"""Credit lots: the batches an account's credits come in (docs/credit-lots.md).

Every account has a **plan lot**: the current period's allowance. It is not stored on its
own: it is what the account's counters (``token_quota``, ``token_used``, ``token_held``,
the sums over the live lots) hold beyond the account's other lots, so an account with
only its plan lot is stored and read exactly as before lots existed. The other lots
(``carry_over``, ``rollover``, ``promotional``, ``purchased``) are the snapshot's
``lots``.

A lot burns in a total, deterministic order (:func:`burn_key`), and a debit or a hold
takes its credits lot by lot in that order (:func:`burn`), each up to what the lot has
free. The plan lot is the only lot whose ``used`` may exceed its ``amount`` (a downgrade,
a settle's overage; a carry-over lot inherits holds that may exceed what it backs).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from tokenplans.errors import InvalidRequestError

from .described import described
from .limits import MAX_AMOUNT

#: The plan lot's id (it is one per account: the current period's allowance).
PLAN_LOT_ID = "plan"
#: At most this many live lots per account (the plan lot counts); only admin grants are
#: refused beyond it.
MAX_LIVE_LOTS = 100
#: A lot's priority: 0 (the default) to this; lower burns first.
MAX_PRIORITY = 1000
#: A lot id's length, in characters.
MAX_LOT_ID_LENGTH = 255


class LotSource(enum.StrEnum):
    """Where a lot's credits came from; also the burn order among lots otherwise equal."""

    PLAN = "plan"
    CARRY_OVER = "carry_over"
    ROLLOVER = "rollover"
    PROMOTIONAL = "promotional"
    PURCHASED = "purchased"


#: Sources in burn order (ties after priority and expiry).
SOURCE_ORDER: Mapping[LotSource, int] = {source: n for n, source in enumerate(LotSource)}


class LotStatus(enum.StrEnum):
    """active -> expired | voided. An expired or voided lot keeps counting only while
    open holds still hold its credits."""

    ACTIVE = "active"
    EXPIRED = "expired"
    VOIDED = "voided"


@attrs.frozen
class Draw:
    """``amount`` credits taken from the lot ``lot_id`` (by a debit, a hold, a settle)."""

    lot_id: str
    amount: int


def draws_of(value: Iterable[Draw | Mapping[str, Any]]) -> tuple[Draw, ...]:
    """Draws as given, or as JSON made them (objects with ``lot_id`` and ``amount``)."""
    return tuple(
        d if isinstance(d, Draw) else Draw(str(d["lot_id"]), int(d["amount"])) for d in value
    )


def draws_field() -> Any:
    """An entry's or a hold's draws: a tuple of :class:`Draw` (:func:`draws_of` reads them
    from JSON)."""
    return attrs.field(default=())


@attrs.frozen
class Lot:
    """One batch of credits: ``amount`` made available, ``used`` of it, ``held`` by open
    holds. ``created_by`` is who made it: the admin, the payment, or the system (``None``:
    a period's allowance, a carry-over or a rollover)."""

    lot_id: str = attrs.field(metadata=described(min_length=1, max_length=MAX_LOT_ID_LENGTH))
    source: LotSource
    amount: int = attrs.field(metadata=described(maximum=MAX_AMOUNT))
    used: int = 0
    held: int = 0
    priority: int = attrs.field(default=0, metadata=described(maximum=MAX_PRIORITY))
    effective_at: datetime | None = None
    expires_at: datetime | None = attrs.field(
        default=None, metadata=described("When the lot's free credits lapse; null: never.")
    )
    created_by: str | None = None
    status: LotStatus = LotStatus.ACTIVE

    @property
    def remaining(self) -> int:
        """What the lot can still give: ``max(0, amount - used - held)``."""
        return max(0, self.amount - self.used - self.held)

    @property
    def counts(self) -> bool:
        """Whether the lot is in the account's sums: active, or still holding credits."""
        return self.status is LotStatus.ACTIVE or self.held > 0

    @property
    def is_plan(self) -> bool:
        return self.source is LotSource.PLAN


def check_lot_id(lot_id: object) -> str:
    """A caller's lot id: 1-255 letters, digits, ``-``, ``_`` or ``.`` (tokenplans' own
    ids have a ``:``, so the two never collide), or :class:`InvalidRequestError`."""
    if (
        not isinstance(lot_id, str)
        or not 1 <= len(lot_id) <= MAX_LOT_ID_LENGTH
        or not lot_id.isascii()
        or not all(ch.isalnum() or ch in "-_." for ch in lot_id)
        or lot_id == PLAN_LOT_ID
    ):
        raise InvalidRequestError(
            f"lot_id must be 1 to {MAX_LOT_ID_LENGTH} letters, digits, '-', '_' or '.' "
            f"(and not {PLAN_LOT_ID!r})"
        )
    return lot_id


def check_priority(priority: object) -> int:
    if (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not 0 <= priority <= MAX_PRIORITY
    ):
        raise InvalidRequestError(f"priority must be an integer from 0 to {MAX_PRIORITY}")
    return priority


def burn_key(lot: Lot) -> tuple[Any, ...]:
    """The burn-down order, total and deterministic: priority ascending; then expiry
    ascending, never-expiring last; then plan, carry-over, rollover, promotional before
    purchased; then effective instant; then lot id."""
    expires = lot.expires_at
    effective = lot.effective_at
    return (
        lot.priority,
        expires is None,
        expires.timestamp() if expires is not None else 0.0,
        SOURCE_ORDER[lot.source],
        effective.timestamp() if effective is not None else 0.0,
        lot.lot_id,
    )


def in_burn_order(lots: Iterable[Lot]) -> list[Lot]:
    return sorted(lots, key=burn_key)


def burn(lots: Sequence[Lot], amount: int) -> tuple[list[Lot], tuple[Draw, ...], int]:
    """Take up to ``amount`` free credits from ``lots`` in burn order, into ``used``:
    the lots after, the draws, and what no lot had (``amount`` minus the draws)."""
    return _take(lots, amount, into="used")


def reserve(lots: Sequence[Lot], amount: int) -> tuple[list[Lot], tuple[Draw, ...], int]:
    """As :func:`burn`, into ``held``."""
    return _take(lots, amount, into="held")


def _take(
    lots: Sequence[Lot], amount: int, *, into: str
) -> tuple[list[Lot], tuple[Draw, ...], int]:
    taken: dict[str, int] = {}
    left = amount
    for lot in in_burn_order(lots):
        if left == 0:
            break
        if lot.status is not LotStatus.ACTIVE:
            continue
        part = min(left, lot.remaining)
        if part > 0:
            taken[lot.lot_id] = part
            left -= part
    after = [
        attrs.evolve(lot, **{into: getattr(lot, into) + taken[lot.lot_id]})
        if lot.lot_id in taken
        else lot
        for lot in lots
    ]
    draws = tuple(
        Draw(lot.lot_id, taken[lot.lot_id]) for lot in in_burn_order(lots) if lot.lot_id in taken
    )
    return after, draws, left


def draws_json(draws: Sequence[Draw]) -> list[dict[str, Any]]:
    return [{"lot_id": draw.lot_id, "amount": draw.amount} for draw in draws]


def lots_json(lots: Sequence[Lot]) -> list[dict[str, Any]] | None:
    """Lots as JSON objects (times in ISO 8601), what stores keep; ``None`` for none."""
    if not lots:
        return None
    return [
        {
            **attrs.asdict(lot, recurse=False),
            "source": lot.source.value,
            "status": lot.status.value,
            "effective_at": None if lot.effective_at is None else lot.effective_at.isoformat(),
            "expires_at": None if lot.expires_at is None else lot.expires_at.isoformat(),
        }
        for lot in lots
    ]


def lots_from_json(stored: Sequence[Mapping[str, Any]] | None) -> tuple[Lot, ...]:
    """What :func:`lots_json` made of lots, as lots."""
    if not stored:
        return ()
    return tuple(
        Lot(
            **{
                **item,
                "source": LotSource(item["source"]),
                "status": LotStatus(item["status"]),
                "effective_at": _instant(item.get("effective_at")),
                "expires_at": _instant(item.get("expires_at")),
            }
        )
        for item in stored
    )


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)
