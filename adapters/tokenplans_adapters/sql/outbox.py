"""The outbox, webhook endpoints and deliveries of :class:`SqlAccountStore`: the core's
optional :class:`~tokenplans.ports.EventStore` capability (docs/events.md).

An event is inserted by the commit that emitted it (:func:`insert_event`), with no
position yet: identity values are handed out at insert, not at commit, so their order is
not the order in which transactions become visible, and a reader paging by them could
pass over an event committed late. **Routing** gives positions instead: under the lock
of the one ``tokenplans_outbox_state`` row, it numbers the committed events that have
none, in insert order, after the last position given, and creates their deliveries for
the enabled endpoints that want them, in one transaction. An event committed later is
routed later and gets a later position, so the feed (by position) never skips one, and
an account's events, whose commits are serialised on the account row, keep their order.

Claiming leases the oldest pending delivery of each endpoint and subject (so a subject's
events go out in order while other subjects' go on) with ``SELECT ... FOR UPDATE SKIP
LOCKED`` on PostgreSQL and MariaDB/MySQL, so workers in several processes pass each
other's rows by; SQLite serialises writers with ``BEGIN IMMEDIATE``. The lease itself
(``lease_token``, ``leased_until``) is what keeps a claimed delivery from every other
worker once the claim has committed, and what frees it when its worker dies.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from tokenplans.ports import (
    Attempt,
    Backlog,
    Claim,
    Delivery,
    DeliveryStatus,
    Event,
    EventPage,
    EventType,
    WebhookEndpoint,
)

from .schema import events, outbox_state, webhook_deliveries, webhook_endpoints

T = TypeVar("T")

#: How many events one routing transaction numbers.
_ROUTE_BATCH = 500
#: Errors recorded on a delivery are cut to this many characters.
_MAX_ERROR = 500
_PENDING = DeliveryStatus.PENDING.value


def insert_event(conn: Connection, event: Event) -> None:
    """Append ``event`` to the outbox (its id taken: a unique violation, a conflict)."""
    conn.execute(
        insert(events).values(
            event_id=event.id,
            type=event.type.value,
            subject=event.subject,
            created_at=event.created_at,
            data=dict(event.data),
        )
    )


def _event_from_row(row: Row[Any]) -> Event:
    m = row._mapping
    return Event(
        id=m["event_id"],
        type=EventType(m["type"]),
        created_at=m["created_at"],
        subject=m["subject"],
        data=m["data"],
        position=m["position"],
    )


def _endpoint_from_row(row: Row[Any]) -> WebhookEndpoint:
    m = row._mapping
    return WebhookEndpoint(
        id=m["id"],
        url=m["url"],
        secret=m["secret"],
        created_at=m["created_at"],
        events=None if m["events"] is None else tuple(m["events"]),
        description=m["description"],
        enabled=bool(m["enabled"]),
        disabled_at=m["disabled_at"],
        failing_since=m["failing_since"],
    )


def _delivery_from_row(row: Row[Any]) -> Delivery:
    m = row._mapping
    return Delivery(
        endpoint_id=m["endpoint_id"],
        event_id=m["event_id"],
        event_type=m["event_type"],
        subject=m["subject"],
        position=m["position"],
        status=DeliveryStatus(m["status"]),
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        last_attempt_at=m["last_attempt_at"],
        last_status_code=m["last_status_code"],
        last_error=m["last_error"],
        delivered_at=m["delivered_at"],
    )


_UNROUTED = select(events.c.seq).where(events.c.position.is_(None)).limit(1)


class SqlOutbox:
    """The :class:`~tokenplans.ports.EventStore` methods of :class:`SqlAccountStore`."""

    if TYPE_CHECKING:
        _dialect: str

        def _read(self, query: Callable[[Connection], T]) -> T: ...

        def _write(self) -> AbstractContextManager[Connection]: ...

    # -- routing -------------------------------------------------------------------

    def route_events(self) -> int:
        """Number the committed events that have no position yet and create their
        deliveries (module docstring); how many were routed. Cheap when there are none:
        one indexed read, no lock."""
        routed = 0
        while self._read(lambda conn: conn.execute(_UNROUTED).first()) is not None:
            with self._write() as conn:
                batch = self._route(conn)
            routed += batch
            if batch < _ROUTE_BATCH:
                break
        return routed

    def _route(self, conn: Connection) -> int:
        state = select(outbox_state.c.last_position).where(outbox_state.c.id == 1)
        if self._dialect != "sqlite":
            state = state.with_for_update()
        last = conn.execute(state).scalar()
        if last is None:  # a schema made without the migration's row
            conn.execute(insert(outbox_state).values(id=1, last_position=0))
            last = 0
        rows = conn.execute(
            select(events.c.seq, events.c.event_id, events.c.type, events.c.subject)
            .add_columns(events.c.created_at)
            .where(events.c.position.is_(None))
            .order_by(events.c.seq)
            .limit(_ROUTE_BATCH)
        ).all()
        if not rows:
            return 0
        numbered = [(last + i, row) for i, row in enumerate(rows, start=1)]
        conn.execute(
            update(events)
            .where(events.c.seq == bindparam("b_seq"))
            .values(position=bindparam("b_position")),
            [{"b_seq": row.seq, "b_position": position} for position, row in numbered],
        )
        # Disabled endpoints too: their deliveries wait, and go once one is re-enabled.
        endpoints = [_endpoint_from_row(row) for row in conn.execute(select(webhook_endpoints))]
        deliveries = [
            {
                "endpoint_id": endpoint.id,
                "event_id": row.event_id,
                "event_type": row.type,
                "subject": row.subject,
                "position": position,
                "event_created_at": row.created_at,
                "status": _PENDING,
                "attempts": 0,
                "next_attempt_at": row.created_at,
            }
            for position, row in numbered
            for endpoint in endpoints
            if endpoint.wants(row.type)
        ]
        if deliveries:
            conn.execute(insert(webhook_deliveries), deliveries)
        conn.execute(
            update(outbox_state).where(outbox_state.c.id == 1).values(last_position=numbered[-1][0])
        )
        return len(rows)

    # -- the feed ------------------------------------------------------------------

    def events(self, *, after: int = 0, limit: int = 100) -> EventPage:
        self.route_events()
        query = (
            select(events)
            .where(events.c.position > after)
            .order_by(events.c.position)
            .limit(max(0, limit))
        )
        page = tuple(self._read(lambda conn: [_event_from_row(r) for r in conn.execute(query)]))
        return EventPage(page, page[-1].position or after if page else after)

    # -- endpoints -----------------------------------------------------------------

    def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        with self._write() as conn:
            conn.execute(
                insert(webhook_endpoints).values(
                    id=endpoint.id,
                    url=endpoint.url,
                    secret=endpoint.secret,
                    events=None if endpoint.events is None else list(endpoint.events),
                    description=endpoint.description,
                    created_at=endpoint.created_at,
                    enabled=endpoint.enabled,
                    disabled_at=endpoint.disabled_at,
                    failing_since=endpoint.failing_since,
                )
            )

    def endpoints(self) -> Sequence[WebhookEndpoint]:
        query = select(webhook_endpoints).order_by(
            webhook_endpoints.c.created_at, webhook_endpoints.c.id
        )
        return self._read(lambda conn: [_endpoint_from_row(r) for r in conn.execute(query)])

    def find_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        query = select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)

        def read(conn: Connection) -> WebhookEndpoint | None:
            row = conn.execute(query).first()
            return None if row is None else _endpoint_from_row(row)

        return self._read(read)

    def delete_endpoint(self, endpoint_id: str) -> bool:
        with self._write() as conn:
            conn.execute(
                delete(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
            )
            gone = conn.execute(
                delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
            )
            return gone.rowcount == 1

    # -- deliveries ----------------------------------------------------------------

    def deliveries(
        self, endpoint_id: str, *, before: int | None = None, limit: int = 50
    ) -> Sequence[Delivery]:
        d = webhook_deliveries
        query = select(d).where(d.c.endpoint_id == endpoint_id)
        if before is not None:
            query = query.where(d.c.position < before)
        query = query.order_by(d.c.position.desc()).limit(max(0, limit))
        return self._read(lambda conn: [_delivery_from_row(r) for r in conn.execute(query)])

    def retry_delivery(self, endpoint_id: str, event_id: str, now: datetime) -> Delivery | None:
        d = webhook_deliveries
        key = and_(d.c.endpoint_id == endpoint_id, d.c.event_id == event_id)
        with self._write() as conn:
            again = conn.execute(
                update(d)
                .where(key)
                .values(status=_PENDING, next_attempt_at=now, lease_token=None, leased_until=None)
            )
            if again.rowcount != 1:
                return None
            conn.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == endpoint_id)
                .values(enabled=True, disabled_at=None, failing_since=None)
            )
            return _delivery_from_row(conn.execute(select(d).where(key)).one())

    def claim_deliveries(
        self, now: datetime, *, limit: int, lease_seconds: float
    ) -> Sequence[Claim]:
        self.route_events()
        d = webhook_deliveries
        earlier = d.alias("earlier")
        enabled = select(webhook_endpoints.c.id).where(webhook_endpoints.c.enabled.is_(True))
        due = (
            select(d.c.endpoint_id, d.c.event_id)
            .where(
                d.c.status == _PENDING,
                d.c.next_attempt_at <= now,
                or_(d.c.leased_until.is_(None), d.c.leased_until <= now),
                d.c.endpoint_id.in_(enabled),
                ~exists(
                    select(earlier.c.position).where(
                        earlier.c.endpoint_id == d.c.endpoint_id,
                        earlier.c.subject == d.c.subject,
                        earlier.c.status == _PENDING,
                        earlier.c.position < d.c.position,
                    )
                ),
            )
            .order_by(d.c.position)
            .limit(max(0, limit))
        )
        # An idle poll reads only: no write transaction (SQLite's write lock) unless
        # something is due.
        if self._read(lambda conn: conn.execute(due.limit(1)).first()) is None:
            return []
        if self._dialect != "sqlite":
            due = due.with_for_update(skip_locked=True)
        until = now + timedelta(seconds=lease_seconds)
        with self._write() as conn:
            keys = conn.execute(due).all()
            if not keys:
                return []
            tokens = {(k.endpoint_id, k.event_id): secrets.token_hex(8) for k in keys}
            conn.execute(
                update(d)
                .where(
                    d.c.endpoint_id == bindparam("b_endpoint"), d.c.event_id == bindparam("b_event")
                )
                .values(lease_token=bindparam("b_token"), leased_until=until),
                [
                    {"b_endpoint": endpoint, "b_event": event, "b_token": token}
                    for (endpoint, event), token in tokens.items()
                ],
            )
            rows = conn.execute(
                select(d, events.c.data, events.c.created_at, events.c.type)
                .join(events, events.c.event_id == d.c.event_id)
                .where(or_(*(and_(d.c.endpoint_id == e, d.c.event_id == v) for e, v in tokens)))
            ).all()
            endpoint_ids = {k.endpoint_id for k in keys}
            by_id = {
                e.id: e
                for e in (
                    _endpoint_from_row(r)
                    for r in conn.execute(
                        select(webhook_endpoints).where(webhook_endpoints.c.id.in_(endpoint_ids))
                    )
                )
            }
        claims = []
        for row in rows:
            delivery = _delivery_from_row(row)
            m = row._mapping
            event = Event(
                id=delivery.event_id,
                type=EventType(m["type"]),
                created_at=m["created_at"],
                subject=delivery.subject,
                data=m["data"],
                position=delivery.position,
            )
            token = tokens[(delivery.endpoint_id, delivery.event_id)]
            claims.append(Claim(delivery, event, by_id[delivery.endpoint_id], token, until))
        return sorted(claims, key=lambda c: c.delivery.position)

    def finish_delivery(self, claim: Claim, attempt: Attempt) -> bool:
        d, e = webhook_deliveries, webhook_endpoints
        status = (
            DeliveryStatus.DELIVERED
            if attempt.delivered
            else DeliveryStatus.PENDING
            if attempt.retry_at is not None
            else DeliveryStatus.FAILED
        )
        error = None if attempt.error is None else attempt.error[:_MAX_ERROR]
        endpoint_id = claim.delivery.endpoint_id
        with self._write() as conn:
            done = conn.execute(
                update(d)
                .where(
                    d.c.endpoint_id == endpoint_id,
                    d.c.event_id == claim.delivery.event_id,
                    d.c.lease_token == claim.token,
                )
                .values(
                    status=status.value,
                    attempts=d.c.attempts + 1,
                    last_attempt_at=attempt.at,
                    last_status_code=attempt.status_code,
                    last_error=error,
                    next_attempt_at=attempt.retry_at or claim.delivery.next_attempt_at,
                    delivered_at=attempt.at if attempt.delivered else None,
                    lease_token=None,
                    leased_until=None,
                )
            )
            if done.rowcount != 1:
                return False
            if attempt.delivered:
                conn.execute(update(e).where(e.c.id == endpoint_id).values(failing_since=None))
                return False
            conn.execute(
                update(e)
                .where(e.c.id == endpoint_id, e.c.failing_since.is_(None))
                .values(failing_since=attempt.at)
            )
            since = conn.execute(select(e.c.failing_since).where(e.c.id == endpoint_id)).scalar()
            if (
                since is None
                or (attempt.at - since).total_seconds() < attempt.disable_after_seconds
            ):
                return False
            # Disabled once: of two workers failing together, one finds it still enabled.
            disabled = conn.execute(
                update(e)
                .where(e.c.id == endpoint_id, e.c.enabled.is_(True))
                .values(enabled=False, disabled_at=attempt.at)
            )
            return disabled.rowcount == 1

    def outbox_backlog(self, now: datetime) -> Backlog:
        d = webhook_deliveries
        query = select(func.count(), func.min(d.c.event_created_at)).where(d.c.status == _PENDING)

        def read(conn: Connection) -> Backlog:
            count, oldest = conn.execute(query).one()
            age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
            return Backlog(int(count), age)

        return self._read(read)
