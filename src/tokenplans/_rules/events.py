"""Which events a change emits (docs/events.md), as pure functions of the ledger entries
and records it commits.

An event is derived from a committed transition, never from a read: every commit of an
account is a compare-and-write on its version, so the account's ledger is one line of
snapshots, each transition in it is committed once, and an event derived from a
transition is emitted once, however many requests race to make it. Event ids are
derived from the transition too (subject, ledger version, type, threshold), so one
transition cannot even be given two ids.

``usage.threshold_crossed`` fires when an entry takes the account from below a threshold
to at or above it (:func:`reached`): usage only grows within a period, so each
threshold fires at most once per period; whatever brings the level back down re-arms it
(a period reset, a term end, a plan change, a grant, or a new lot), since the next
crossing is again a transition from below.
"""

from __future__ import annotations

import hashlib
from base64 import b32encode
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tokenplans._values.accounts import Account, Usage, utc_text
from tokenplans._values.events import DEFAULT_THRESHOLDS, Event, EventType
from tokenplans._values.ledger import EntryKind, HoldFacts, LedgerEntry, LotFacts, PaymentFacts
from tokenplans._values.payments import Payment, PaymentStatus
from tokenplans._values.records import Record

#: The entry kinds that are an event of their own, by the event's type.
_ENTRY_EVENTS: Mapping[EntryKind, EventType] = {
    EntryKind.PERIOD_RESET: EventType.PERIOD_RESET,
    EntryKind.PLAN_CHANGED: EventType.PLAN_CHANGED,
    EntryKind.TERM_EXPIRED: EventType.TERM_EXPIRED,
    EntryKind.HOLD_EXPIRED: EventType.HOLD_EXPIRED,
    EntryKind.LOT_GRANTED: EventType.LOT_GRANTED,
    EntryKind.LOT_PURCHASED: EventType.LOT_PURCHASED,
    EntryKind.LOT_EXPIRED: EventType.LOT_EXPIRED,
    EntryKind.LOT_VOIDED: EventType.LOT_VOIDED,
}


def check_thresholds(thresholds: Iterable[int]) -> tuple[int, ...]:
    """The thresholds, sorted and without repeats: whole percentages from 1 to 1000."""
    checked = tuple(sorted(set(thresholds)))
    for each in checked:
        if isinstance(each, bool) or not isinstance(each, int) or not 1 <= each <= 1000:  # noqa: PLR2004
            raise ValueError(f"a usage threshold is a whole percentage 1-1000, got {each!r}")
    return checked


def reached(account: Account, percent: int) -> bool:
    """Whether the account's usage is at or above ``percent`` of its quota: the level
    every threshold is measured by, in one place (an account with no quota has no
    percentage, and reaches none). ``token_quota`` sums the account's live credit lots,
    so a new lot lowers the level (re-arming what it passes below)."""
    quota = account.token_quota
    return quota > 0 and account.token_used * 100 >= percent * quota


def crossed(before: Account, after: Account, thresholds: Sequence[int]) -> tuple[int, ...]:
    """The thresholds a transition crosses upwards: not reached before, reached after."""
    return tuple(t for t in thresholds if reached(after, t) and not reached(before, t))


def before_entry(entry: LedgerEntry) -> Account:
    """The snapshot an entry was applied to, from its snapshot after and its deltas. (Only
    the fields :func:`reached` reads are exact for a reset or a plan change; an opening's
    is an account with no quota.)"""
    after = entry.after
    return Account(
        subject=after.subject,
        plan_id=after.plan_id,
        token_quota=max(0, after.token_quota - entry.quota_delta),
        token_used=max(0, after.token_used - entry.used_delta),
        period_start=after.period_start,
        period_end=after.period_end,
        plan_end_at=after.plan_end_at,
        version=max(0, after.version - 1),
        token_held=max(0, after.token_held - entry.held_delta),
    )


def events_of(
    entries: Sequence[LedgerEntry],
    records: Sequence[Record],
    thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
    stored: Account | None = None,
) -> tuple[Event, ...]:
    """The events one commit emits, in the order of its entries, then its paid payments
    (each dated by the entry or the payment behind it). ``stored`` is the snapshot the
    first entry was applied to (``None``: read from the entry's deltas)."""
    events: list[Event] = []
    previous = stored
    for entry in entries:
        after = entry.after
        before = before_entry(entry) if previous is None else previous
        previous = after
        kind_event = _ENTRY_EVENTS.get(entry.kind)
        if kind_event is not None:
            data = _entry_data(kind_event, entry, before)
            events.append(_entry_event(kind_event, entry, data))
        for threshold in crossed(before, after, thresholds):
            data = {"threshold": threshold}
            events.append(_entry_event(EventType.THRESHOLD_CROSSED, entry, data, str(threshold)))
    last = entries[-1] if entries else None
    for record in records:
        if isinstance(record, Payment) and record.status is PaymentStatus.PAID:
            events.append(payment_event(record, last))
    return tuple(events)


def payment_event(payment: Payment, entry: LedgerEntry | None = None, cause: str = "") -> Event:
    """``payment.succeeded`` (with the usage after the entry it paid for) or
    ``payment.failed`` for a payment; ``cause`` tells two failures of one payment apart
    (the provider's event id)."""
    kind = (
        EventType.PAYMENT_SUCCEEDED
        if payment.status is PaymentStatus.PAID
        else EventType.PAYMENT_FAILED
    )
    data: dict[str, Any] = {
        "payment_id": payment.id,
        "provider": payment.provider,
        "order_id": payment.order_id,
        "plan": payment.plan_id,
        "amount": payment.amount,
        "currency": payment.currency,
    }
    if entry is not None:
        data |= _after(entry)
    return Event(
        id=event_id(payment.subject, "payment", payment.id, kind.value, cause),
        type=kind,
        created_at=payment.updated_at if entry is None else entry.at,
        subject=payment.subject,
        data=data,
    )


def usage_json(account: Account) -> dict[str, Any]:
    """An account's usage as the events carry it (the usage API's fields)."""
    usage = Usage.of(account)
    return {
        "plan": usage.plan,
        "token_quota": usage.token_quota,
        "token_used": usage.token_used,
        "token_held": usage.token_held,
        "remaining": usage.remaining,
        "period_start": utc_text(usage.period_start),
        "period_end": utc_text(usage.period_end),
        "plan_end_at": None if usage.plan_end_at is None else utc_text(usage.plan_end_at),
    }


def event_id(subject: str, *parts: str) -> str:
    """``evt_`` and 26 base32 characters of a digest of the subject and the cause."""
    digest = hashlib.sha256("\x00".join((subject, *parts)).encode("utf-8")).digest()
    return "evt_" + b32encode(digest).decode("ascii").lower()[:26]


def _after(entry: LedgerEntry) -> dict[str, Any]:
    return {"version": entry.version, "usage": usage_json(entry.after)}


def _entry_data(kind: EventType, entry: LedgerEntry, before: Account) -> dict[str, Any]:
    match kind:
        case EventType.PLAN_CHANGED | EventType.TERM_EXPIRED:
            data: dict[str, Any] = {"previous_plan": before.plan_id, "message": entry.message}
            if isinstance(entry.facts, PaymentFacts):
                data["payment_id"] = entry.facts.payment_id
            return data
        case EventType.HOLD_EXPIRED if isinstance(entry.facts, HoldFacts):
            return {"hold_id": entry.facts.hold_id, "released": -entry.held_delta}
        case (
            EventType.LOT_GRANTED
            | EventType.LOT_PURCHASED
            | EventType.LOT_EXPIRED
            | EventType.LOT_VOIDED
        ) if isinstance(entry.facts, LotFacts):
            # A new lot's credits, or what an expiry or void forfeited.
            return {"lot_id": entry.facts.lot_id, "amount": entry.amount}
        case _:
            return {"previous_token_used": before.token_used}


def _entry_event(
    kind: EventType, entry: LedgerEntry, data: Mapping[str, Any], extra: str = ""
) -> Event:
    subject = entry.after.subject
    return Event(
        id=event_id(subject, str(entry.version), kind.value, extra),
        type=kind,
        created_at=entry.at,
        subject=subject,
        data={**data, **_after(entry)},
    )
