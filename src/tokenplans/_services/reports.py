"""The read use cases over time and across accounts: usage reports by day and model, the
top spenders and the accounts list (docs/reports.md).

Reports read the store's daily rollup (:class:`~tokenplans._ports.UsageReports`), which
every commit keeps: never the ledger. The accounts list reads stored snapshots a page at
a time (:class:`~tokenplans._ports.AccountDirectory`) and rolls each forward to now in
memory, as a usage read does, without a read per account.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from tokenplans._ports import AccountDirectory, UsageReports
from tokenplans._rules.expiry import roll_forward_with_expiry
from tokenplans._rules.permissions import check_can_read, check_is_admin
from tokenplans._values.accounts import Usage
from tokenplans._values.limits import check_page_size, check_subject
from tokenplans._values.principal import Principal
from tokenplans._values.reports import (
    GROUPINGS,
    MAX_REPORT_DAYS,
    AccountsPage,
    SpendersPage,
    UsageReport,
    total_of,
)
from tokenplans.errors import InvalidRequestError

from .parts import ServiceParts, whose

#: The spenders' cursor: credits (at most 19 digits), a dot, a subject.
_MAX_CREDIT_DIGITS = 19
_MAX_SPENDER_CURSOR = _MAX_CREDIT_DIGITS + 1 + 255


class ReportUseCases(ServiceParts):
    """:class:`~tokenplans.TokenService`'s reports and accounts list."""

    def usage_report(
        self,
        principal: Principal,
        *,
        start: date,
        end: date,
        group_by: Sequence[str] = ("day",),
        subject: str | None = None,
    ) -> UsageReport:
        """What the subject (the principal's own unless ``subject`` is given; another's
        needs an admin) spent from ``start`` to ``end``, UTC days both included (at most
        366), grouped by ``group_by``: ``("day",)``, ``("model",)``, ``("day", "model")``
        or ``()`` (totals only). Reads the daily rollup: its cost does not grow with the
        ledger."""
        subject = check_subject(whose(principal, subject))
        check_can_read(principal, subject)
        return self._report(subject, start, end, group_by)

    def usage_report_all(
        self, principal: Principal, *, start: date, end: date, group_by: Sequence[str] = ("day",)
    ) -> UsageReport:
        """Admin only: :meth:`usage_report` summed over every subject (``subject`` is
        ``None`` in the report)."""
        check_is_admin(principal, "read every account's usage")
        return self._report(None, start, end, group_by)

    def top_spenders(
        self,
        principal: Principal,
        *,
        start: date,
        end: date,
        cursor: str | None = None,
        limit: int = 50,
    ) -> SpendersPage:
        """Admin only: subjects by credits spent from ``start`` to ``end`` (UTC days,
        both included, at most 366), most first, then by subject; at most ``limit``
        (1-200) a page, ``next_cursor`` for the next."""
        check_is_admin(principal, "list the top spenders")
        start, end = check_days(start, end)
        check_page_size(limit)
        after = _spender_cursor(cursor)
        rows = tuple(self._reports().top_spenders(start=start, end=end, limit=limit, after=after))
        more = len(rows) == limit
        last = rows[-1] if rows else None
        following = f"{last.totals.credits}.{last.subject}" if more and last else None
        return SpendersPage(start, end, rows, following)

    def list_accounts(
        self,
        principal: Principal,
        *,
        plan: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> AccountsPage:
        """Admin only: stored accounts in subject order, each as of now (due resets and
        term expiries applied; ``token_held`` counts the holds open as stored: one past
        its expiry still counts until the account's next change), only those on
        ``plan`` when given; at most ``limit`` (1-200) a page, the page's
        ``next_cursor`` for the next."""
        check_is_admin(principal, "list accounts")
        check_page_size(limit)
        after = None if cursor is None else _account_cursor(cursor)
        if plan is not None:
            self.catalog.get(plan)  # an unknown plan is refused, not an empty list
        now = self._accounts.now()
        # An account whose term has ended rolls onto the default plan: the default
        # plan's list takes them in, and every other list leaves them out below.
        ended_by = now if plan == self.catalog.default_plan.id else None
        stored = self._directory().list_accounts(
            limit=limit, after=after, plan=plan, or_ended_by=ended_by
        )
        rolled = [roll_forward_with_expiry(a, self.catalog, now).change.account for a in stored]
        shown = tuple(Usage.of(a) for a in rolled if plan is None or a.plan_id == plan)
        more = len(stored) == limit
        return AccountsPage(shown, stored[-1].subject if more and stored else None)

    # -- helpers -------------------------------------------------------------------

    def _report(
        self, subject: str | None, start: date, end: date, group_by: Sequence[str]
    ) -> UsageReport:
        start, end = check_days(start, end)
        grouping = check_group_by(group_by)
        rows = tuple(
            self._reports().usage_rows(
                start=start,
                end=end,
                subject=subject,
                by_day="day" in grouping,
                by_model="model" in grouping,
            )
        )
        return UsageReport(subject, start, end, grouping, rows, total_of(rows))

    def _reports(self) -> UsageReports:
        if not isinstance(self.store, UsageReports):
            raise TypeError(f"{type(self.store).__name__} keeps no usage rollup (UsageReports)")
        return self.store

    def _directory(self) -> AccountDirectory:
        if not isinstance(self.store, AccountDirectory):
            raise TypeError(f"{type(self.store).__name__} cannot list accounts (AccountDirectory)")
        return self.store


def check_days(start: object, end: object) -> tuple[date, date]:
    """``(start, end)`` if both are dates (not datetimes), ``start <= end`` and they span
    at most :data:`MAX_REPORT_DAYS` days, both included; else :class:`InvalidRequestError`."""
    first, last = _day("from", start), _day("to", end)
    if first > last:
        raise InvalidRequestError(f"from ({first}) must not be after to ({last})")
    days = (last - first).days + 1
    if days > MAX_REPORT_DAYS:
        raise InvalidRequestError(
            f"a report covers at most {MAX_REPORT_DAYS} days; {first} to {last} is {days}"
        )
    return first, last


def _day(name: str, value: object) -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidRequestError(f"{name} must be a date (a UTC day), got {value!r}")
    return value


def check_group_by(group_by: object) -> tuple[str, ...]:
    """``group_by`` as a subset of ``("day", "model")`` in that order: a sequence of
    those names, or one string of them separated by commas; else
    :class:`InvalidRequestError`."""
    names: object = group_by
    if isinstance(names, str):
        names = [] if names == "" else names.split(",")
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise InvalidRequestError(f"group_by must be day, model or both, got {group_by!r}")
    unknown = [n for n in names if n not in GROUPINGS]
    if unknown or len(set(names)) != len(names):
        raise InvalidRequestError(
            f"group_by must be day, model or day,model (each once), got {group_by!r}"
        )
    return tuple(g for g in GROUPINGS if g in names)


def _spender_cursor(cursor: object) -> tuple[int, str] | None:
    """The spenders' cursor (``"<credits>.<subject>"``) as its parts, or ``None``."""
    if cursor is None:
        return None
    if isinstance(cursor, str) and len(cursor) <= _MAX_SPENDER_CURSOR:
        credits, dot, subject = cursor.partition(".")
        digits = credits.isascii() and credits.isdecimal()
        if dot and digits and len(credits) <= _MAX_CREDIT_DIGITS and subject:
            return int(credits), _account_cursor(subject)
    raise InvalidRequestError(f"invalid cursor {cursor!r}")


def _account_cursor(cursor: object) -> str:
    try:
        return check_subject(cursor)
    except InvalidRequestError:
        raise InvalidRequestError(f"invalid cursor {cursor!r}") from None
