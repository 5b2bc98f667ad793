"""The ports: what the core needs from the outside world, as narrow protocols.

Each method's docstring is its contract; ``tokenplans.testing.InMemoryStore`` is the
model implementation and the storage contract suite holds every store to it.
Implementers import these from :mod:`tokenplans.ports`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Protocol, runtime_checkable

import attrs

from tokenplans._values.accounts import Account
from tokenplans._values.events import (
    Attempt,
    Backlog,
    Claim,
    Delivery,
    Event,
    EventPage,
    WebhookEndpoint,
)
from tokenplans._values.expiring import Outstanding
from tokenplans._values.holds import Hold
from tokenplans._values.ledger import DebitReceipt, LedgerEntry
from tokenplans._values.payments import (
    CheckoutStart,
    Confirmation,
    GatewayDescription,
    GatewayEvent,
    Payment,
    PaymentStatus,
)
from tokenplans._values.principal import Principal
from tokenplans._values.records import Record
from tokenplans._values.reports import Spender, UsageRow


@attrs.frozen
class Commit:
    """Everything one request changes, written atomically by :meth:`AccountStore.commit`.

    ``expected_version`` is the version the decision was made on (0: the subject had no
    stored account). ``entries`` are the new ledger entries, oldest first; the last one's
    ``after`` is ``account``. ``records`` are written in the same transaction, each kind
    by its own rule:

    - :class:`~tokenplans.DebitReceipt`: inserted for its subject, caller and idempotency
      key; a key already stored for the same subject and caller is a conflict. Only its
      amount, time and ``version`` are kept: its usage is the snapshot after the ledger
      entry at that version, written in the same commit, and is read back from there,
      as is its ``priced`` call (the entry's);
    - :class:`~tokenplans.Payment`: inserted, or replacing the stored one with its id;
      a stored payment that is ``refunded`` is never replaced: that is a conflict (so a
      confirmation racing a refund that came first re-reads, and buys nothing);
    - :class:`HandledEvent`: marks a provider event id handled; one already marked is a
      conflict;
    - :class:`HoldWrite`: inserts a new hold (``previous is None``; a key — subject, caller,
      id — already stored is a conflict), or replaces the stored hold, compare-and-write on
      its status (a stored status other than ``previous`` is a conflict). A commit
      holds at most one write per hold;
    - :class:`~tokenplans.Event`: appended to the outbox (an id already stored is a
      conflict), to be read by :meth:`EventStore.events` and delivered to the webhook
      endpoints it matches.

    A store that keeps the daily usage rollup (:class:`UsageReports`) adds what the
    entries spend (``tokenplans.ports.daily_usage(entries)``: each debit's and
    settle's credits, one call and its tokens, by subject, UTC day and model) to its
    rows in the same transaction, without losing a concurrent commit's addition.
    """

    account: Account
    expected_version: int
    entries: tuple[LedgerEntry, ...]
    records: tuple[Record, ...] = ()


class AccountStore(Protocol):
    """Accounts, their ledgers and idempotency receipts.

    Concurrency is optimistic: readers never lock, and :meth:`commit` is a
    compare-and-write on the account's version, so of two changes decided on the same
    snapshot exactly one commits and the other gets :class:`WriteConflictError` and is
    decided again by the service (a store may also let the service decide inside a lock
    on the account: :class:`RowLockingStore`). Every method may raise
    :class:`StorageUnavailableError` when the store cannot be reached.
    """

    def load(self, subject: str) -> Account | None:
        """The stored snapshot, or ``None`` if the subject has never been written. Reads
        one row: its cost does not grow with the ledger."""
        ...

    def commit(self, commit: Commit) -> None:
        """Write the snapshot, its entries and its records all together or not at all.

        Raises :class:`WriteConflictError`, writing nothing, when the stored version is
        not ``commit.expected_version`` (a missing account counts as version 0), or when
        a record conflicts by its kind's rule (see :class:`Commit`).
        """
        ...

    def find_receipt(self, subject: str, caller: str, idempotency_key: str) -> DebitReceipt | None:
        """The receipt of the successful debit ``caller`` made on ``subject``'s account
        with this key, or ``None``. Keys are scoped to the pair: the same key from another
        caller is another request. Its ``usage`` is read from the ledger entry at the
        receipt's version (one more indexed read, made only when a receipt is found)."""
        ...

    def history(
        self, subject: str, *, before_version: int | None = None, limit: int = 50
    ) -> Sequence[LedgerEntry]:
        """Up to ``limit`` entries, newest first, with ``version < before_version`` when
        given (a keyset cursor: pages stay stable while new entries arrive)."""
        ...

    def outstanding(self, subject: str) -> Outstanding:
        """What the subject has stored as open that lapses at its own instant (past its
        expiry or not): its open holds, oldest first (by creation, then caller and id).
        One indexed read per kind of thing: its cost grows with the open holds (at most
        1,000), never with the closed ones or the ledger."""
        ...

    def find_hold(self, subject: str, hold_id: str, *, caller: str | None = None) -> Hold | None:
        """The subject's hold with this id placed by ``caller`` (the subject itself when
        ``None``), in any status, or ``None``. Ids are scoped to the subject *and* the
        caller: two callers' holds with one id are two holds."""
        ...

    def subjects_with_expired_holds(
        self, now: datetime, *, limit: int, after: str | None = None
    ) -> Sequence[str]:
        """Up to ``limit`` distinct subjects with a hold stored as open whose
        ``expires_at`` is at or before ``now`` (for a sweep; expiry itself needs none), in
        subject order, only those after ``after`` when it is given (a keyset cursor, so a
        sweep moves on from a subject it could not tidy instead of finding it again)."""
        ...


@runtime_checkable
class RowLockingStore(Protocol):
    """An optional capability of an :class:`AccountStore`: deciding inside a lock on the
    account. A store offering it has a ``locked`` method, and the services then make each
    attempt of a change inside it, so that writers of one hot account queue on the lock
    instead of deciding on the same snapshot and all but one retrying. The services
    check ``isinstance(store, RowLockingStore)``: a store without it is used
    optimistically, as the port says. (The check looks the method up on the class or
    the instance, never through ``__getattr__``: a wrapper delegates it explicitly.)
    """

    def locked(self, subject: str) -> AbstractContextManager[object]:
        """A block in which this thread's calls on the store are one transaction that
        holds ``subject``'s row lock (taken at entry; a subject with no row yet is not
        locked, and its creators still race on :meth:`AccountStore.commit`). The block
        commits when it ends normally, and rolls back, writing nothing, when an exception
        (a :class:`WriteConflictError` above all) leaves it. :meth:`AccountStore.commit`
        keeps its compare-and-write inside the block, so the lock only spares retries:
        correctness never depends on it."""
        ...


@runtime_checkable
class UsageReports(Protocol):
    """An optional capability of an :class:`AccountStore`: the daily usage rollup, kept
    by :meth:`AccountStore.commit` (see :class:`Commit`), and read here at a cost that
    grows with the days, models and subjects read, never with the ledger. The services
    check ``isinstance(store, UsageReports)``; ``TokenService.usage_report`` and
    ``top_spenders`` need it."""

    def usage_rows(
        self, *, start: date, end: date, subject: str | None, by_day: bool, by_model: bool
    ) -> Sequence[UsageRow]:
        """The rollup's sums from ``start`` to ``end`` (UTC days, both included) for
        ``subject`` (``None``: every subject), one row per day and/or model as asked
        (neither: one row of totals), the other key ``None``; in day then model order,
        only where something was spent (no row at all when nothing was)."""
        ...

    def top_spenders(
        self, *, start: date, end: date, limit: int, after: tuple[int, str] | None = None
    ) -> Sequence[Spender]:
        """Up to ``limit`` subjects with their totals from ``start`` to ``end``, by
        credits descending then subject, only those after ``after`` (the last row's
        credits and subject: a keyset cursor) when given."""
        ...


@runtime_checkable
class AccountDirectory(Protocol):
    """An optional capability of an :class:`AccountStore`: listing the stored accounts
    (for admins), one indexed range read per page whatever the number of accounts."""

    def list_accounts(
        self,
        *,
        limit: int,
        after: str | None = None,
        plan: str | None = None,
        or_ended_by: datetime | None = None,
    ) -> Sequence[Account]:
        """Up to ``limit`` stored snapshots in subject order, only subjects after
        ``after`` when given; with ``plan``, only those stored on it, and with
        ``or_ended_by`` also those whose term ends at or before that instant (the
        roll-forward moves them to the default plan)."""
        ...


@attrs.frozen
class Stamped:
    """An account as a :class:`ClockedStore` read it, with the time to decide on it.

    ``account`` is what :meth:`AccountStore.load` returns. ``now`` is the store's clock
    read in the same round trip (the database's time), or ``None`` when the store leaves
    the time to the service's :class:`Clock`. ``last_entry_at`` is the instant of the
    account's latest ledger entry (``None`` without an account): a decision is never
    dated before it, so an account's entries never go back in time.
    """

    account: Account | None
    now: datetime | None
    last_entry_at: datetime | None = None


@runtime_checkable
class ClockedStore(Protocol):
    """An optional capability of an :class:`AccountStore`: one clock for every process
    that shares it. Servers' clocks drift apart; a ledger shared by several must not
    let each date its own decisions (a hold expired on one server is open on another,
    a month ends twice). A store offering it says what time it is with the account it
    reads, and the services decide at that time, moved forward to the account's last
    entry if that is later; a store without it is dated by the service's clock, as
    before. The services check ``isinstance(store, ClockedStore)`` (looked up as for
    :class:`RowLockingStore`: a wrapper delegates it explicitly).
    """

    def load_stamped(self, subject: str) -> Stamped:
        """:meth:`AccountStore.load` with the store's current time and the instant of
        the account's last entry (:class:`Stamped`), in one round trip where the
        store can (inside :meth:`RowLockingStore.locked`, read with the lock)."""
        ...

    def current_time(self) -> datetime | None:
        """The store's current time (an aware datetime), for a decision that reads no
        account (a sweep's cut-off), or ``None`` when the service's clock decides."""
        ...


class PaymentStore(Protocol):
    """Payments and handled provider events. A payment that changes an account is
    written by :meth:`AccountStore.commit` (as a record); these write the rest."""

    def add_payment(self, payment: Payment) -> None:
        """Insert a new payment (status created). Raises :class:`WriteConflictError` if
        its id or its order id is already stored."""
        ...

    def find_payment(self, order_id: str) -> Payment | None:
        """The payment made for the gateway's ``order_id``, or ``None``."""
        ...

    def find_payment_by_gateway_id(self, gateway_payment_id: str) -> Payment | None:
        """The payment the provider paid as ``gateway_payment_id`` (its
        ``gateway_payment_id``), or ``None``: how a refund naming only the provider's
        payment finds ours."""
        ...

    def payments_of(self, subject: str, *, limit: int = 100) -> Sequence[Payment]:
        """The subject's payments, newest first."""
        ...

    def update_payment(
        self,
        payment: Payment,
        *,
        expected_status: PaymentStatus,
        event_id: str | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        """Replace a payment whose account does not change (a failure), compare-and-write
        on its status, marking ``event_id`` handled and appending ``events`` to the
        outbox (as :class:`Commit` does) in the same transaction. Raises
        :class:`WriteConflictError`, writing nothing, if the stored status is not
        ``expected_status`` or the event id is already marked."""
        ...

    def event_seen(self, event_id: str) -> bool:
        """Whether a payment-provider event id has been marked handled."""
        ...


@runtime_checkable
class EventStore(Protocol):
    """An optional capability of an :class:`AccountStore`: the outbox its commits append
    events to, the webhook endpoints they are delivered to and each delivery's attempts
    (docs/events.md). A worker delivers; the stores only keep what happened. Times are
    the worker's clock's (an aware UTC datetime)."""

    def events(self, *, after: int = 0, limit: int = 100) -> EventPage:
        """Up to ``limit`` committed events with a position above ``after``, in outbox
        order: the order their changes committed in, without gaps, so a consumer that
        passes each page's ``next_after`` back never skips an event committed late."""
        ...

    def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        """Store a new endpoint (an id already stored is a conflict). It receives the
        events committed after it was added."""
        ...

    def endpoints(self) -> Sequence[WebhookEndpoint]:
        """Every endpoint, oldest first."""
        ...

    def find_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        """The endpoint with this id, or ``None``."""
        ...

    def delete_endpoint(self, endpoint_id: str) -> bool:
        """Delete the endpoint and its deliveries; ``False`` when there was none."""
        ...

    def deliveries(
        self, endpoint_id: str, *, before: int | None = None, limit: int = 50
    ) -> Sequence[Delivery]:
        """The endpoint's deliveries, newest event first, those with a position below
        ``before`` when given."""
        ...

    def retry_delivery(self, endpoint_id: str, event_id: str, now: datetime) -> Delivery | None:
        """Make the delivery pending again, due at ``now`` (and the endpoint enabled and
        no longer failing); ``None`` when the endpoint has no delivery of that event."""
        ...

    def claim_deliveries(
        self, now: datetime, *, limit: int, lease_seconds: float
    ) -> Sequence[Claim]:
        """Route the events committed since the last call to the endpoints that want
        them (disabled ones too: their deliveries wait for a re-enabling), then lease up
        to ``limit`` deliveries that are due to this caller until ``now + lease_seconds``:
        for each enabled endpoint and subject only the oldest pending delivery, so a
        subject's events arrive in order while other subjects' go on; a delivery leased
        to a caller is claimed by no other until its lease lapses (a worker that died
        mid-delivery)."""
        ...

    def finish_delivery(self, claim: Claim, attempt: Attempt) -> bool:
        """Record the attempt of a claimed delivery: delivered, due again at
        ``attempt.retry_at``, or failed for good; the endpoint's failure streak with it.
        ``True`` when this attempt disabled the endpoint (it failed continuously for
        ``attempt.disable_after_seconds``: said once). A claim whose lease was taken
        over records nothing."""
        ...

    def outbox_backlog(self, now: datetime) -> Backlog:
        """The pending deliveries and the age of the oldest one's event: one cheap read
        (for metrics)."""
        ...


class Clock(Protocol):
    """Where the core learns the time."""

    def now(self) -> datetime:
        """The current instant as an aware UTC datetime."""
        ...


class IdentityProvider(Protocol):
    """Turns a bearer credential into a principal."""

    def authenticate(self, credential: str) -> Principal:
        """The principal the credential proves, or :class:`AuthenticationError` for any
        credential that is malformed, expired, badly signed or names no subject."""
        ...


@runtime_checkable
class BlockingHint(Protocol):
    """An optional capability of an :class:`IdentityProvider`: saying whether
    :meth:`~IdentityProvider.authenticate` may block (network I/O). An async caller runs
    a provider with ``may_block = False`` inline on its event loop (checking a signature
    costs less than the hop to a thread), and any other provider, including one without
    this attribute, in a worker thread."""

    may_block: bool


@runtime_checkable
class KnowsCredentials(Protocol):
    """An optional capability of an :class:`IdentityProvider` that may block: answering
    a credential it verified before without I/O, so that an async caller asks it on the
    event loop and hops to a thread only for a credential it does not know."""

    def known(self, credential: str) -> Principal | None:
        """The principal of ``credential`` if it was verified before and is still valid,
        else ``None``; never I/O, never raises for a bad credential."""
        ...


@runtime_checkable
class SupportsClose(Protocol):
    """An optional capability of a port implementation (a payment gateway's HTTP
    client): resources to release when the app shuts down."""

    def close(self) -> object:
        """Release the resources; the object is not used afterwards."""
        ...


class PaymentGateway(Protocol):
    """A payment provider, in neutral terms: every provider detail (field and header
    names, signature schemes, event names, order limits) stays in its adapter, which
    describes its wire shapes in :attr:`description` for the adapters that serve them."""

    @property
    def name(self) -> str:
        """The provider's short name: lower-case ASCII letters and digits (``razorpay``),
        as its payments record it and its routes (``/api/payments/NAME/...``) name it; the
        ledger names confirmations ``NAME:verify`` and ``NAME:webhook``."""
        ...

    @property
    def description(self) -> GatewayDescription:
        """What the provider's checkout proof, checkout fields and webhook headers are
        called and look like (:class:`GatewayDescription`)."""
        ...

    def start_checkout(
        self, *, payment_id: str, subject: str, plan_id: str, amount: int, currency: str
    ) -> CheckoutStart:
        """Create an order for ``amount`` minor units for our payment ``payment_id``, and
        say what a browser needs to pay it. Raises :class:`GatewayError` when the provider
        is unreachable or refuses."""
        ...

    def resume_checkout(self, *, order_id: str) -> CheckoutStart:
        """What a browser needs to pay ``order_id``, an order :meth:`start_checkout` made
        earlier that is still open (it is handed back instead of a new one). Makes no
        order; raises :class:`GatewayError` if the provider must be asked and cannot be."""
        ...

    def read_confirmation(self, proof: Mapping[str, object]) -> Confirmation:
        """What the fields a browser posted after paying (``proof``) confirm. Raises
        :class:`InvalidRequestError` for fields that are missing or malformed; a proof
        that does not check out is a confirmation with ``authentic=False``."""
        ...

    def read_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        """The event a webhook delivery carries: ``body`` is the raw request body, exactly
        as received, ``headers`` its HTTP headers. Raises :class:`PaymentError` (reason
        ``bad_signature`` or ``malformed_event``) for a delivery the provider did not sign
        or that is no event, and :class:`InvalidRequestError` for a malformed header."""
        ...
