"""In-memory ports for tests (yours and ours): a store, a settable clock, a static identity.

``InMemoryStore`` is the model implementation of :class:`~tokenplans.ports.AccountStore`,
:class:`~tokenplans.ports.PaymentStore` and :class:`~tokenplans.ports.EventStore`: every
SQL store is held to it by the storage contract suite.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import assert_never

import attrs

from tokenplans._ports import Commit
from tokenplans._values.accounts import Account, Usage, as_utc
from tokenplans._values.events import (
    Attempt,
    Backlog,
    Claim,
    Delivery,
    DeliveryStatus,
    Event,
    EventPage,
    WebhookEndpoint,
)
from tokenplans._values.expiring import Outstanding
from tokenplans._values.holds import Hold, HoldKey, HoldWrite
from tokenplans._values.ledger import DebitReceipt, LedgerEntry
from tokenplans._values.payments import HandledEvent, Payment, PaymentStatus
from tokenplans._values.principal import Principal
from tokenplans._values.records import Record
from tokenplans._values.reports import (
    DailyUsage,
    Spender,
    UsageRow,
    comes_after,
    daily_usage,
    report_rows,
    spender_rows,
)
from tokenplans.errors import AuthenticationError, WriteConflictError


class InMemoryStore:
    """A thread-safe store in a few dicts; one lock makes each commit atomic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self._ledgers: dict[str, list[LedgerEntry]] = {}
        # Keyed (subject, caller, key); the usage is not kept: it is the ledger's.
        self._receipts: dict[tuple[str, str, str], _ReceiptRow] = {}
        self._payments: dict[str, Payment] = {}
        self._events: set[str] = set()
        self._holds: dict[tuple[str, str, str], Hold] = {}  # by (subject, caller, id)
        self._open: dict[str, dict[HoldKey, Hold]] = {}  # by subject: what outstanding reads
        # The daily usage rollup, by (subject, UTC day, model); see UsageReports.
        self._usage: dict[tuple[str, date, str], DailyUsage] = {}
        # The outbox: events in commit order (position = index + 1), how many of them
        # were routed to endpoints, the endpoints, their deliveries and leases.
        self._outbox: list[Event] = []
        self._outbox_ids: set[str] = set()
        self._routed = 0
        self._endpoints: dict[str, WebhookEndpoint] = {}
        self._deliveries: dict[tuple[str, str], Delivery] = {}
        self._leases: dict[tuple[str, str], tuple[str, datetime]] = {}

    def load(self, subject: str) -> Account | None:
        return self._accounts.get(subject)

    def commit(self, commit: Commit) -> None:
        subject = commit.account.subject
        with self._lock:
            stored = self._accounts.get(subject)
            if (0 if stored is None else stored.version) != commit.expected_version:
                raise WriteConflictError(f"account {subject!r} changed since the read")
            # Every record is checked before anything is written: no half-written commit.
            writes = [self._stage(record) for record in commit.records]
            for write in writes:
                write()
            self._accounts[subject] = commit.account
            self._ledgers.setdefault(subject, []).extend(commit.entries)
            self._add_usage(commit.entries)

    def _add_usage(self, entries: Sequence[LedgerEntry]) -> None:
        """Add what ``entries`` spend to the rollup (the lock is held)."""
        for spent in daily_usage(entries):
            before = self._usage.get(spent.key)
            self._usage[spent.key] = spent if before is None else before.plus(spent)

    # -- reports (the UsageReports and AccountDirectory capabilities) ---------------

    def usage_rows(
        self, *, start: date, end: date, subject: str | None, by_day: bool, by_model: bool
    ) -> Sequence[UsageRow]:
        with self._lock:
            rows = [
                row
                for row in self._usage.values()
                if start <= row.day <= end and (subject is None or row.subject == subject)
            ]
        return report_rows(rows, by_day=by_day, by_model=by_model)

    def top_spenders(
        self, *, start: date, end: date, limit: int, after: tuple[int, str] | None = None
    ) -> Sequence[Spender]:
        with self._lock:
            rows = [row for row in self._usage.values() if start <= row.day <= end]
        return [s for s in spender_rows(rows) if comes_after(s, after)][: max(0, limit)]

    def list_accounts(
        self,
        *,
        limit: int,
        after: str | None = None,
        plan: str | None = None,
        or_ended_by: datetime | None = None,
    ) -> Sequence[Account]:
        with self._lock:
            listed = [
                account
                for subject, account in self._accounts.items()
                if (after is None or subject > after)
                and (
                    plan is None
                    or account.plan_id == plan
                    or (
                        or_ended_by is not None
                        and account.plan_end_at is not None
                        and account.plan_end_at <= or_ended_by
                    )
                )
            ]
        return sorted(listed, key=lambda a: a.subject)[: max(0, limit)]

    def _stage(self, record: Record) -> Callable[[], None]:
        """Check ``record`` by its kind's conflict rule (see :class:`Commit`) and return
        the write that stores it; the lock is held."""
        if isinstance(record, DebitReceipt):
            return self._stage_receipt(record)
        if isinstance(record, Payment):
            stored = self._payments.get(record.id)
            if stored is not None and stored.status is PaymentStatus.REFUNDED:
                raise WriteConflictError(f"payment {record.id!r} was refunded")
            return lambda: self._payments.__setitem__(record.id, record)
        if isinstance(record, HandledEvent):
            return self._stage_event(record.event_id)
        if isinstance(record, HoldWrite):
            return self._stage_hold(record)
        if isinstance(record, Event):
            return self._stage_outbox(record)
        assert_never(record)

    def _stage_outbox(self, event: Event) -> Callable[[], None]:
        if event.id in self._outbox_ids:
            raise WriteConflictError(f"event {event.id!r} already in the outbox")

        def append() -> None:
            self._outbox_ids.add(event.id)
            self._outbox.append(attrs.evolve(event, position=len(self._outbox) + 1))

        return append

    def _stage_hold(self, write: HoldWrite) -> Callable[[], None]:
        hold = attrs.evolve(write.hold, replayed=False, priced=None)
        key = (hold.subject, *hold.key)
        stored = self._holds.get(key)
        if (None if stored is None else stored.status) != write.previous:
            raise WriteConflictError(f"hold {hold.hold_id!r} changed since the read")
        return lambda: self._store_hold(hold)

    def _store_hold(self, hold: Hold) -> None:
        self._holds[(hold.subject, *hold.key)] = hold
        open_ones = self._open.setdefault(hold.subject, {})
        if hold.is_open:
            open_ones[hold.key] = hold
        else:
            open_ones.pop(hold.key, None)

    def _stage_receipt(self, receipt: DebitReceipt) -> Callable[[], None]:
        if receipt.idempotency_key is None:
            return lambda: None
        key = (receipt.subject, receipt.caller, receipt.idempotency_key)
        if key in self._receipts:
            raise WriteConflictError(f"idempotency key {key[2]!r} already used")
        row = _ReceiptRow(receipt.amount, receipt.at, receipt.version, receipt.request)
        return lambda: self._receipts.__setitem__(key, row)

    def _stage_event(self, event_id: str) -> Callable[[], None]:
        if event_id in self._events:
            raise WriteConflictError(f"event {event_id!r} already handled")
        return lambda: self._events.add(event_id)

    def find_receipt(self, subject: str, caller: str, idempotency_key: str) -> DebitReceipt | None:
        with self._lock:
            row = self._receipts.get((subject, caller, idempotency_key))
            if row is None:
                return None
            # Versions are 1..n, so the entry at version v is the ledger's v-th.
            entry = self._ledgers[subject][row.version - 1]
        return DebitReceipt(
            subject=subject,
            caller=caller,
            idempotency_key=idempotency_key,
            amount=row.amount,
            at=row.at,
            version=row.version,
            usage=Usage.of(entry.after),
            priced=entry.priced,
            request=row.request,
            message=entry.message,
        )

    def history(
        self, subject: str, *, before_version: int | None = None, limit: int = 50
    ) -> Sequence[LedgerEntry]:
        with self._lock:
            ledger = self._ledgers.get(subject, [])
            end = len(ledger) if before_version is None else min(before_version - 1, len(ledger))
            return ledger[max(0, end - limit) : max(0, end)][::-1]

    def outstanding(self, subject: str) -> Outstanding:
        with self._lock:
            mine = list(self._open.get(subject, {}).values())
        return Outstanding(tuple(sorted(mine, key=lambda h: (h.created_at, h.caller, h.hold_id))))

    def find_hold(self, subject: str, hold_id: str, *, caller: str | None = None) -> Hold | None:
        return self._holds.get((subject, subject if caller is None else caller, hold_id))

    def subjects_with_expired_holds(
        self, now: datetime, *, limit: int, after: str | None = None
    ) -> Sequence[str]:
        with self._lock:
            due = {
                subject
                for subject, holds in self._open.items()
                if (after is None or subject > after)
                and any(h.expires_at <= now for h in holds.values())
            }
        return sorted(due)[:limit]

    def add_payment(self, payment: Payment) -> None:
        with self._lock:
            if payment.id in self._payments or self._find(payment.order_id) is not None:
                raise WriteConflictError(f"payment {payment.id!r} already exists")
            self._payments[payment.id] = payment

    def find_payment(self, order_id: str) -> Payment | None:
        with self._lock:
            return self._find(order_id)

    def find_payment_by_gateway_id(self, gateway_payment_id: str) -> Payment | None:
        with self._lock:
            return next(
                (p for p in self._payments.values() if p.gateway_payment_id == gateway_payment_id),
                None,
            )

    def payments_of(self, subject: str, *, limit: int = 100) -> Sequence[Payment]:
        with self._lock:
            mine = [p for p in self._payments.values() if p.subject == subject]
        return sorted(mine, key=lambda p: (p.created_at, p.id), reverse=True)[:limit]

    def update_payment(
        self,
        payment: Payment,
        *,
        expected_status: PaymentStatus,
        event_id: str | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        with self._lock:
            stored = self._payments.get(payment.id)
            if stored is None or stored.status != expected_status:
                raise WriteConflictError(f"payment {payment.id!r} changed since the read")
            writes = [self._stage_outbox(event) for event in events]
            if event_id is not None:
                writes.append(self._stage_event(event_id))
            for write in writes:
                write()
            self._payments[payment.id] = payment

    def event_seen(self, event_id: str) -> bool:
        return event_id in self._events

    # -- events ---------------------------------------------------------------------

    def events(self, *, after: int = 0, limit: int = 100) -> EventPage:
        with self._lock:
            page = tuple(self._outbox[max(0, after) : max(0, after) + max(0, limit)])
        return EventPage(page, page[-1].position or after if page else after)

    def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        with self._lock:
            if endpoint.id in self._endpoints:
                raise WriteConflictError(f"endpoint {endpoint.id!r} already exists")
            self._endpoints[endpoint.id] = endpoint

    def endpoints(self) -> Sequence[WebhookEndpoint]:
        with self._lock:
            return sorted(self._endpoints.values(), key=lambda e: (e.created_at, e.id))

    def find_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        return self._endpoints.get(endpoint_id)

    def delete_endpoint(self, endpoint_id: str) -> bool:
        with self._lock:
            if self._endpoints.pop(endpoint_id, None) is None:
                return False
            for key in [k for k in self._deliveries if k[0] == endpoint_id]:
                del self._deliveries[key]
                self._leases.pop(key, None)
            return True

    def deliveries(
        self, endpoint_id: str, *, before: int | None = None, limit: int = 50
    ) -> Sequence[Delivery]:
        with self._lock:
            mine = [
                d
                for (endpoint, _), d in self._deliveries.items()
                if endpoint == endpoint_id and (before is None or d.position < before)
            ]
        return sorted(mine, key=lambda d: d.position, reverse=True)[: max(0, limit)]

    def retry_delivery(self, endpoint_id: str, event_id: str, now: datetime) -> Delivery | None:
        with self._lock:
            key = (endpoint_id, event_id)
            stored = self._deliveries.get(key)
            endpoint = self._endpoints.get(endpoint_id)
            if stored is None or endpoint is None:
                return None
            again = attrs.evolve(stored, status=DeliveryStatus.PENDING, next_attempt_at=now)
            self._deliveries[key] = again
            self._endpoints[endpoint_id] = attrs.evolve(
                endpoint, enabled=True, disabled_at=None, failing_since=None
            )
            return again

    def claim_deliveries(
        self, now: datetime, *, limit: int, lease_seconds: float
    ) -> Sequence[Claim]:
        with self._lock:
            self._route()
            heads: dict[tuple[str, str], Delivery] = {}
            for delivery in sorted(self._deliveries.values(), key=lambda d: d.position):
                endpoint = self._endpoints[delivery.endpoint_id]
                key = (delivery.endpoint_id, delivery.subject)
                if delivery.status is DeliveryStatus.PENDING and endpoint.enabled:
                    heads.setdefault(key, delivery)
            claims: list[Claim] = []
            until = now + timedelta(seconds=lease_seconds)
            for head in sorted(heads.values(), key=lambda d: d.position):
                key = (head.endpoint_id, head.event_id)
                lease = self._leases.get(key)
                if head.next_attempt_at > now or (lease is not None and lease[1] > now):
                    continue
                token = secrets.token_hex(8)
                self._leases[key] = (token, until)
                event = self._outbox[head.position - 1]
                claims.append(Claim(head, event, self._endpoints[head.endpoint_id], token, until))
                if len(claims) >= limit:
                    break
            return claims

    def _route(self) -> None:
        for event in self._outbox[self._routed :]:
            for endpoint in self._endpoints.values():
                if endpoint.wants(event.type.value):
                    self._deliveries[(endpoint.id, event.id)] = Delivery(
                        endpoint_id=endpoint.id,
                        event_id=event.id,
                        event_type=event.type.value,
                        subject=event.subject,
                        position=event.position or 0,
                        status=DeliveryStatus.PENDING,
                        attempts=0,
                        next_attempt_at=event.created_at,
                    )
        self._routed = len(self._outbox)

    def finish_delivery(self, claim: Claim, attempt: Attempt) -> bool:
        with self._lock:
            key = (claim.delivery.endpoint_id, claim.delivery.event_id)
            lease = self._leases.get(key)
            stored = self._deliveries.get(key)
            endpoint = self._endpoints.get(key[0])
            if lease is None or lease[0] != claim.token or stored is None or endpoint is None:
                return False
            del self._leases[key]
            status = (
                DeliveryStatus.DELIVERED
                if attempt.delivered
                else DeliveryStatus.PENDING
                if attempt.retry_at is not None
                else DeliveryStatus.FAILED
            )
            self._deliveries[key] = attrs.evolve(
                stored,
                status=status,
                attempts=stored.attempts + 1,
                last_attempt_at=attempt.at,
                last_status_code=attempt.status_code,
                last_error=attempt.error,
                next_attempt_at=attempt.retry_at or stored.next_attempt_at,
                delivered_at=attempt.at if attempt.delivered else None,
            )
            if attempt.delivered:
                self._endpoints[key[0]] = attrs.evolve(endpoint, failing_since=None)
                return False
            since = endpoint.failing_since or attempt.at
            disable = endpoint.enabled and (
                (attempt.at - since).total_seconds() >= attempt.disable_after_seconds
            )
            self._endpoints[key[0]] = attrs.evolve(
                endpoint,
                failing_since=since,
                enabled=endpoint.enabled and not disable,
                disabled_at=attempt.at if disable else endpoint.disabled_at,
            )
            return disable

    def outbox_backlog(self, now: datetime) -> Backlog:
        with self._lock:
            pending = [
                d
                for d in self._deliveries.values()
                if d.status is DeliveryStatus.PENDING and self._endpoints[d.endpoint_id].enabled
            ]
            oldest = min((self._outbox[d.position - 1].created_at for d in pending), default=now)
        return Backlog(len(pending), max(0.0, (now - oldest).total_seconds()))

    def _find(self, order_id: str) -> Payment | None:
        return next((p for p in self._payments.values() if p.order_id == order_id), None)


@attrs.frozen
class _ReceiptRow:
    """What a store keeps of a receipt besides its key: the amount, the version of its
    ledger entry (whose snapshot is the usage a replay answers) and what it was for."""

    amount: int
    at: datetime
    version: int
    request: str


@attrs.define
class SettableClock:
    """A clock that stands still until a test moves it."""

    current: datetime = attrs.field(
        factory=lambda: datetime(2026, 1, 15, 12, 0, tzinfo=UTC), converter=as_utc
    )

    def now(self) -> datetime:
        """The time the test last set."""
        return self.current

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (an aware datetime, kept as UTC), forwards or back."""
        self.current = as_utc(moment)

    def advance(self, delta: timedelta | None = None, /, **parts: float) -> datetime:
        """Move by ``delta`` (``advance(timedelta(days=3))``) or by ``timedelta(**parts)``
        (``advance(days=3)``), and return the new time."""
        if delta is None:
            delta = timedelta(**parts)
        elif parts:
            raise TypeError("advance() takes a timedelta or keywords like days=3, not both")
        elif not isinstance(delta, timedelta):
            raise TypeError(f"advance() takes a timedelta, got {delta!r}")
        self.current += delta
        return self.current


class StaticIdentity:
    """Credentials that are simply names for principals: ``{"alice-token": Principal(...)}``."""

    def __init__(self, principals: Mapping[str, Principal]) -> None:
        self._principals = dict(principals)

    def authenticate(self, credential: str) -> Principal:
        try:
            return self._principals[credential]
        except KeyError:
            raise AuthenticationError("unknown credential") from None
