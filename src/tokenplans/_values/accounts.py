"""The account snapshot and what a caller reads of it (README, "How quotas work")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from .lots import PLAN_LOT_ID, Lot, LotSource, in_burn_order


def _utc(_instance: object, attribute: attrs.Attribute[datetime], value: object) -> None:
    if not isinstance(value, datetime) or value.tzinfo is not UTC:
        raise ValueError(f"{attribute.name} must be a datetime with tzinfo=UTC, got {value!r}")


def _utc_or_none(
    _instance: object, attribute: attrs.Attribute[datetime | None], value: object
) -> None:
    if value is not None:
        _utc(_instance, attribute, value)  # type: ignore[arg-type]


def _count(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be a non-negative integer, got {value!r}")


def as_utc(moment: datetime) -> datetime:
    """The same instant with ``tzinfo=UTC``; naive datetimes are refused, not guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {moment!r}")
    return moment.astimezone(UTC)


def utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as every time tokenplans writes reads:
    ``2026-02-14T12:00:00Z``."""
    return as_utc(moment).isoformat().replace("+00:00", "Z")


@attrs.frozen
class Account:
    """One subject's quota state at ``version`` (the number of ledger entries behind it).

    ``[period_start, period_end)`` is the current period: a calendar month while the
    account has no paid term (``plan_end_at is None``), else the term itself.
    ``token_held`` is the sum of the account's open holds: reserved, not yet used.

    The counters are sums over the account's live credit lots: its plan lot (the
    period's allowance, which is what the counters hold beyond the others) and ``lots``,
    the others (carry-over, rollover, promotional, purchased), which an account with only
    its plan lot does not have (docs/credit-lots.md).
    """

    subject: str
    plan_id: str
    token_quota: int = attrs.field(validator=_count)
    token_used: int = attrs.field(validator=_count)
    period_start: datetime = attrs.field(validator=_utc)
    period_end: datetime = attrs.field(validator=_utc)
    plan_end_at: datetime | None = attrs.field(validator=_utc_or_none)
    version: int = attrs.field(validator=_count)
    token_held: int = attrs.field(default=0, validator=_count)
    lots: tuple[Lot, ...] = ()

    @property
    def plan_lot(self) -> Lot:
        """The period's allowance: the counters less the other lots'."""
        others = self.lots
        return Lot(
            PLAN_LOT_ID,
            LotSource.PLAN,
            self.token_quota - sum(lot.amount for lot in others) if others else self.token_quota,
            self.token_used - sum(lot.used for lot in others) if others else self.token_used,
            self.token_held - sum(lot.held for lot in others) if others else self.token_held,
            effective_at=self.period_start,
            expires_at=self.period_end if self.plan_end_at is None else self.plan_end_at,
        )

    @property
    def all_lots(self) -> list[Lot]:
        """Every lot that counts, the plan lot first, then the others as stored."""
        return [self.plan_lot, *self.lots]

    @property
    def live_lots(self) -> tuple[Lot, ...]:
        """The lots that count, in burn order."""
        if not self.lots:
            return (self.plan_lot,)
        return tuple(in_burn_order(self.all_lots))

    @property
    def remaining(self) -> int:
        """What may still be debited or reserved this period; never negative (a downgrade,
        or a settle above its hold, can leave ``token_used`` above ``token_quota``)."""
        return max(0, self.token_quota - self.token_used - self.token_held)


@attrs.frozen
class Usage:
    """What ``GET /api/tokens/usage`` answers, plus the period, for one subject."""

    subject: str
    plan: str
    token_quota: int
    token_used: int
    remaining: int
    plan_end_at: datetime | None
    period_start: datetime
    period_end: datetime
    token_held: int = 0
    lots: tuple[Lot, ...] = ()

    @classmethod
    def of(cls, account: Account) -> Usage:
        """The account as a caller reads it: every field is the account's own attribute of
        the same name (``plan`` is ``plan_id``), so a new snapshot field is added once, on
        :class:`Account`, and here only by name."""
        return cls(
            **{
                field.name: getattr(account, _ACCOUNT_NAME.get(field.name, field.name))
                for field in attrs.fields(cls)
            }
        )


#: Usage fields whose Account attribute has another name.
_ACCOUNT_NAME = {"plan": "plan_id", "lots": "live_lots"}


def with_lots(lots: list[Lot]) -> dict[str, Any]:
    """The snapshot fields of an account whose lots are ``lots`` (the plan lot among
    them): the counters are their sums, and the others are stored in burn order, those
    that no longer count left out."""
    kept = [lot for lot in lots if lot.counts or lot.is_plan]
    return {
        "token_quota": sum(lot.amount for lot in kept),
        "token_used": sum(lot.used for lot in kept),
        "token_held": sum(lot.held for lot in kept),
        "lots": tuple(in_burn_order(lot for lot in kept if not lot.is_plan)),
    }
