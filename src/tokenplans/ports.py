"""The ports: what the core needs from the outside world, as narrow protocols.

Each method's docstring is its contract; ``tokenplans.testing.InMemoryStore`` is the
model implementation and the storage contract suite holds every store to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import attrs

from tokenplans.accounts import Account
from tokenplans.ledger import DebitReceipt, LedgerEntry
from tokenplans.payments import Payment, PaymentStatus
from tokenplans.permissions import Principal


@attrs.frozen
class Commit:
    """Everything one request changes, written atomically by :meth:`AccountStore.commit`.

    ``expected_version`` is the version the decision was made on (0: the subject had no
    stored account). ``entries`` are the new ledger entries, oldest first; the last one's
    ``after`` is ``account``. ``receipt`` is remembered for an idempotent debit;
    ``payment`` is written (inserted or replaced by ``payment.id``) with the change, and
    ``event_id`` marks a payment-provider event as handled, both in the same transaction.
    """

    account: Account
    expected_version: int
    entries: tuple[LedgerEntry, ...]
    receipt: DebitReceipt | None = None
    payment: Payment | None = None
    event_id: str | None = None


class AccountStore(Protocol):
    """Accounts, their ledgers, idempotency receipts and payments.

    Concurrency is optimistic: readers never lock, and :meth:`commit` is a
    compare-and-write on the account's version, so of two changes decided on the same
    snapshot exactly one commits and the other gets :class:`WriteConflictError` and is
    decided again by the service. Every method may raise
    :class:`StorageUnavailableError` when the store cannot be reached.
    """

    def load(self, subject: str) -> Account | None:
        """The stored snapshot, or ``None`` if the subject has never been written. Reads
        one row: its cost does not grow with the ledger."""
        ...

    def commit(self, commit: Commit) -> None:
        """Write the snapshot, its entries, the receipt, the payment and the event mark
        all together or not at all.

        Raises :class:`WriteConflictError`, writing nothing, when the stored version is
        not ``commit.expected_version`` (a missing account counts as version 0), when the
        receipt's idempotency key is already stored for the same subject and caller, or
        when the event id is already marked.
        """
        ...

    def find_receipt(self, subject: str, caller: str, idempotency_key: str) -> DebitReceipt | None:
        """The receipt of the successful debit ``caller`` made on ``subject``'s account
        with this key, or ``None``. Keys are scoped to the pair: the same key from another
        caller is another request."""
        ...

    def history(
        self, subject: str, *, before_version: int | None = None, limit: int = 50
    ) -> Sequence[LedgerEntry]:
        """Up to ``limit`` entries, newest first, with ``version < before_version`` when
        given (a keyset cursor: pages stay stable while new entries arrive)."""
        ...

    def add_payment(self, payment: Payment) -> None:
        """Insert a new payment (status created). Raises :class:`WriteConflictError` if
        its id or its order id is already stored."""
        ...

    def find_payment(self, order_id: str) -> Payment | None:
        """The payment made for the gateway's ``order_id``, or ``None``."""
        ...

    def payments_of(self, subject: str, *, limit: int = 100) -> Sequence[Payment]:
        """The subject's payments, newest first."""
        ...

    def update_payment(
        self, payment: Payment, *, expected_status: PaymentStatus, event_id: str | None = None
    ) -> None:
        """Replace a payment whose account does not change (a failure), compare-and-write
        on its status, marking ``event_id`` handled in the same transaction. Raises
        :class:`WriteConflictError`, writing nothing, if the stored status is not
        ``expected_status`` or the event id is already marked."""
        ...

    def event_seen(self, event_id: str) -> bool:
        """Whether a payment-provider event id has been marked handled."""
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


class PaymentGateway(Protocol):
    """A payment provider such as Razorpay, or the offline stand-in for development."""

    @property
    def key_id(self) -> str:
        """The public key id the browser checkout needs."""
        ...

    def create_order(
        self, *, amount: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> str:
        """Create an order for ``amount`` minor units and return the provider's order id.
        Raises :class:`GatewayError` when the provider is unreachable or refuses."""
        ...

    def verify_payment(self, *, order_id: str, payment_id: str, signature: str) -> bool:
        """Whether ``signature`` proves the provider captured ``payment_id`` for
        ``order_id``. Never raises for bad input: it is simply ``False``."""
        ...

    def verify_webhook(self, *, body: bytes, signature: str) -> bool:
        """Whether ``signature`` is the provider's signature of the raw ``body``."""
        ...
