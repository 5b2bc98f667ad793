"""Usage over time: the daily rollup a commit adds to, and the reports read from it.

Every ledger entry that spends credits (a ``debited`` or ``hold_settled`` entry) adds
its ``amount`` of credits, one call and its priced call's token counts to one rollup row,
keyed by the subject, the entry's UTC day and its model (:data:`UNPRICED_MODEL`, the
empty string, for an amount that was not priced from a model call). Stores keep the rows
and add to them in the transaction that writes the entries (:func:`daily_usage` says
what a commit adds), so a report reads rows per day and model, never the ledger
(docs/reports.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import attrs

from .accounts import Usage
from .ledger import EntryKind, LedgerEntry
from .model_usage import TOKEN_KINDS

#: The entry kinds that spend credits: what the rollup counts.
SPENDING_KINDS = frozenset({EntryKind.DEBITED, EntryKind.HOLD_SETTLED})
#: The rollup's model for a debit or settle of a plain amount (no model call priced):
#: never a model's name, which has at least one character.
UNPRICED_MODEL = ""
#: What a report may group by, in the order its rows and keys take them.
GROUPINGS = ("day", "model")
#: The longest report: a leap year of UTC days.
MAX_REPORT_DAYS = 366
#: The token count fields of a row, in :data:`~tokenplans.TOKEN_KINDS` order.
TOKEN_FIELDS = tuple(f"{kind}_tokens" for kind in TOKEN_KINDS)
#: The numbers of a row, in the order they are shown.
COUNT_FIELDS = ("credits", "calls", *TOKEN_FIELDS)


@attrs.frozen
class UsageRow:
    """One row of a report: what was spent on ``day`` with ``model`` (``None`` where the
    report is not grouped by it; ``model`` is ``""`` for amounts not priced from a
    model call). ``calls`` counts the debits and settles, ``credits`` their amounts."""

    day: date | None
    model: str | None
    credits: int
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def counts(self) -> dict[str, int]:
        """The numbers by field name, in :data:`COUNT_FIELDS` order."""
        return {name: getattr(self, name) for name in COUNT_FIELDS}

    def plus(self, other: UsageRow) -> UsageRow:
        """This row's numbers added to ``other``'s, keyed as this row."""
        mine, theirs = self.counts(), other.counts()
        summed: dict[str, Any] = {name: mine[name] + theirs[name] for name in mine}
        return attrs.evolve(self, **summed)


def total_of(rows: Iterable[UsageRow]) -> UsageRow:
    """The sum of ``rows``, neither by day nor by model."""
    listed = tuple(rows)
    return UsageRow(None, None, *(sum(getattr(r, name) for r in listed) for name in COUNT_FIELDS))


@attrs.frozen
class UsageReport:
    """Credits, calls and tokens spent from ``start`` to ``end`` (UTC days, both
    included) by ``subject`` (``None``: every subject), grouped by ``group_by`` (a
    subset of ``("day", "model")`` in that order; none: one row of totals). ``rows``
    come in day then model order (the empty model first) and only where something was
    spent; ``totals`` sums them."""

    subject: str | None
    start: date
    end: date
    group_by: tuple[str, ...]
    rows: tuple[UsageRow, ...]
    totals: UsageRow


@attrs.frozen
class Spender:
    """One subject's totals over a report's days (``totals.day`` and ``.model`` are
    ``None``)."""

    subject: str
    totals: UsageRow


@attrs.frozen
class SpendersPage:
    """Subjects by credits spent from ``start`` to ``end``, most first (then by subject);
    pass ``next_cursor`` back for the next page (``None``: this is the last)."""

    start: date
    end: date
    rows: tuple[Spender, ...]
    next_cursor: str | None


@attrs.frozen
class AccountsPage:
    """Accounts in subject order, each as of now; pass ``next_cursor`` back for the
    next page (``None``: this is the last)."""

    accounts: tuple[Usage, ...]
    next_cursor: str | None


@attrs.frozen
class DailyUsage:
    """One rollup row, or what a commit adds to it: a subject's spending on one UTC day
    with one model (:data:`UNPRICED_MODEL` for plain amounts)."""

    subject: str
    day: date
    model: str
    credits: int
    calls: int
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def key(self) -> tuple[str, date, str]:
        return (self.subject, self.day, self.model)

    def counts(self) -> dict[str, int]:
        """The numbers by field name, in :data:`COUNT_FIELDS` order."""
        return {name: getattr(self, name) for name in COUNT_FIELDS}

    def plus(self, other: DailyUsage) -> DailyUsage:
        mine, theirs = self.counts(), other.counts()
        summed: dict[str, Any] = {name: mine[name] + theirs[name] for name in mine}
        return attrs.evolve(self, **summed)


def utc_day(moment: datetime) -> date:
    """The UTC calendar day of an aware ``moment``."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"expected an aware datetime, got naive {moment!r}")
    return (moment - offset).date()


def spent_by(entry: LedgerEntry) -> DailyUsage | None:
    """What ``entry`` adds to the rollup: its amount, one call and its priced call's
    tokens, for a debit or settle; ``None`` for an entry that spends nothing."""
    if entry.kind not in SPENDING_KINDS:
        return None
    priced = entry.priced
    tokens = {} if priced is None else {f"{k}_tokens": v for k, v in priced.usage.counts().items()}
    return DailyUsage(
        subject=entry.subject,
        day=utc_day(entry.at),
        model=UNPRICED_MODEL if priced is None else priced.usage.model,
        credits=entry.amount or 0,
        calls=1,
        **tokens,
    )


def daily_usage(entries: Iterable[LedgerEntry]) -> tuple[DailyUsage, ...]:
    """What ``entries`` add to the rollup: one :class:`DailyUsage` per (subject, day,
    model) they spend on, summed, in key order (stores write them in that order, so
    two commits take the rows' locks in one order)."""
    summed: dict[tuple[str, date, str], DailyUsage] = {}
    for entry in entries:
        spent = spent_by(entry)
        if spent is None:
            continue
        before = summed.get(spent.key)
        summed[spent.key] = spent if before is None else before.plus(spent)
    return tuple(summed[key] for key in sorted(summed))


def report_rows(
    rows: Iterable[DailyUsage], *, by_day: bool, by_model: bool
) -> tuple[UsageRow, ...]:
    """Rollup rows summed by day and/or model (neither: one row of totals, or none for
    no rows), in day then model order: what a store's report read answers."""
    summed: dict[tuple[date | None, str | None], UsageRow] = {}
    for row in rows:
        key = (row.day if by_day else None, row.model if by_model else None)
        as_row = UsageRow(key[0], key[1], **row.counts())
        before = summed.get(key)
        summed[key] = as_row if before is None else before.plus(as_row)
    return tuple(summed[key] for key in sorted(summed, key=_order))


def _order(key: tuple[date | None, str | None]) -> tuple[date, str]:
    return (key[0] or date.min, key[1] or "")


def spender_rows(rows: Iterable[DailyUsage]) -> list[Spender]:
    """Rollup rows summed by subject, most credits first, then by subject."""
    summed: dict[str, UsageRow] = {}
    for row in rows:
        as_row = UsageRow(None, None, **row.counts())
        before = summed.get(row.subject)
        summed[row.subject] = as_row if before is None else before.plus(as_row)
    return sorted(
        (Spender(subject, totals) for subject, totals in summed.items()),
        key=lambda s: (-s.totals.credits, s.subject),
    )


def comes_after(spender: Spender, after: tuple[int, str] | None) -> bool:
    """Whether ``spender`` sorts after the cursor ``after`` (credits, subject) in the
    spenders' order (credits descending, then subject)."""
    if after is None:
        return True
    credits, subject = after
    return spender.totals.credits < credits or (
        spender.totals.credits == credits and spender.subject > subject
    )
