"""One expiry mechanism: the roll-forward lapses everything with an ``expires_at`` that
is due by now, each at its own instant, between the period resets and term expiries due
before it.

Each kind of expiring thing says how it lapses as an :class:`~tokenplans._values.
expiring.Expiry` (holds: :func:`~tokenplans._rules.holds.hold_expiry`); this module
orders them and interleaves them with :func:`~tokenplans._rules.quota.roll_forward`. A
new kind (credit lots) is a field of :class:`Outstanding` and one line in
:func:`expiries_of`, not a second mechanism.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import partial

import attrs

from tokenplans._values.accounts import Account
from tokenplans._values.expiring import Expiry, Outstanding
from tokenplans._values.holds import Hold, HoldKey
from tokenplans._values.ledger import Change
from tokenplans._values.plans import PlanCatalog
from tokenplans._values.records import Record

from .holds import hold_expiry
from .lots import lot_expiries_due
from .quota import roll_forward, steps_monthly


@attrs.frozen
class Rolled:
    """An account rolled forward to now: the change (due resets, term expiries and
    lapses, in time order), the holds that were outstanding as they are now (a lapsed
    one shows expired) and the writes of what lapsed."""

    change: Change
    holds: Mapping[HoldKey, Hold]
    writes: tuple[Record, ...] = ()


def may_have_outstanding(account: Account) -> bool:
    """Whether the snapshot can have anything outstanding stored beside it, so that it is
    worth the read: an account holds open holds only while ``token_held > 0`` (every
    hold holds at least one credit). Its other credit lots are part of the snapshot
    itself (read with it, in the same row)."""
    return account.token_held > 0


def expiries_of(outstanding: Outstanding) -> list[Expiry]:
    """How each outstanding thing lapses."""
    return [hold_expiry(hold) for hold in outstanding.holds if hold.is_open]


def roll_forward_with_expiry(
    account: Account,
    catalog: PlanCatalog,
    now: datetime,
    outstanding: Outstanding = Outstanding(),  # noqa: B008 - frozen, so one default is safe
) -> Rolled:
    """:func:`~tokenplans._rules.quota.roll_forward`, with everything outstanding lapsing
    at its own instant in between: the resets due by a lapse come first (a reset at the
    very instant too), so each entry's snapshot is the one the account had then."""
    change, writes = lapse_in_order(account, catalog, now, expiries_of(outstanding))
    holds = {hold.key: hold.as_of(now) for hold in outstanding.holds}
    return Rolled(change, holds, writes)


def lapse_in_order(
    account: Account, catalog: PlanCatalog, now: datetime, expiries: Iterable[Expiry]
) -> tuple[Change, tuple[Record, ...]]:
    """The roll-forward to ``now`` with every expiry due by then (``at <= now``) lapsing
    at its instant, in (instant, key) order; and what the lapses write."""
    pending = sorted((e for e in expiries if e.at <= now), key=lambda e: (e.at, e.key))
    change = Change(account)
    writes: list[Record] = []
    while True:
        current = change.account
        # The account's own lots lapse too, each at its instant: read from the snapshot
        # as it is by then (a rollover made by a reset on the way lapses in its turn).
        due = pending[:1] + lot_expiries_due(current, now) if current.lots else pending[:1]
        following = min(due, key=lambda e: (e.at, e.key)) if due else None
        until = now if following is None else following.at
        boundary = current.period_end if current.plan_end_at is None else current.plan_end_at
        if boundary <= until:
            # Resets due first (one at its very instant too), one at a time where idle
            # months matter (rollover, lots expiring between them), else all at once.
            step = boundary if steps_monthly(current, catalog) else until
            change = change.then(partial(roll_forward, catalog=catalog, now=step))
            continue
        if following is None:
            return change, tuple(writes)
        change = change.then(following.lapse)
        writes.extend(following.writes)
        if pending and following is pending[0]:
            pending.pop(0)
