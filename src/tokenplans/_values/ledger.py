"""Ledger entries: the append-only facts that explain every account snapshot.

Each entry says what happened (``kind``), when it took effect, by how much the quota
and the usage moved, why (idempotency key, payment, actor) and the snapshot after it.
:func:`fold` replays them; it must reproduce the stored snapshot exactly.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import datetime

import attrs

from .accounts import Account, Usage
from .model_usage import PricedCall


class EntryKind(enum.StrEnum):
    """Past-tense facts. Stored as their value, so renaming a member is a migration."""

    OPENED = "opened"
    PERIOD_RESET = "period_reset"
    TERM_EXPIRED = "term_expired"
    PLAN_CHANGED = "plan_changed"
    RENEWED = "renewed"
    DEBITED = "debited"
    GRANTED = "granted"
    HOLD_PLACED = "hold_placed"
    HOLD_SETTLED = "hold_settled"
    HOLD_RELEASED = "hold_released"
    HOLD_EXPIRED = "hold_expired"


@attrs.frozen
class LedgerEntry:
    """One change to one account. ``after.version`` is the entry's sequence number.

    Hold entries name their hold (``hold_id``) and move ``token_held`` by ``held_delta``;
    a settle above what was held and remained records the excess as ``overage``.
    A debit, hold or settle priced from a model call's usage records it in ``priced``
    (its ``credits`` are the entry's ``amount``).
    """

    kind: EntryKind
    at: datetime
    quota_delta: int
    used_delta: int
    after: Account
    amount: int | None = None
    idempotency_key: str | None = None
    payment_id: str | None = None
    actor: str | None = None
    message: str = ""
    held_delta: int = 0
    hold_id: str | None = None
    overage: int | None = None
    priced: PricedCall | None = None

    @property
    def subject(self) -> str:
        return self.after.subject

    @property
    def version(self) -> int:
        return self.after.version


@attrs.frozen
class Change:
    """A snapshot plus the entries that led to it from the stored one; rules chain with
    :meth:`then`, so one request's roll-forward and its own change commit together."""

    account: Account
    entries: tuple[LedgerEntry, ...] = ()

    def then(self, rule: Callable[[Account], Change]) -> Change:
        following = rule(self.account)
        return Change(following.account, self.entries + following.entries)


@attrs.frozen
class DebitReceipt:
    """The remembered result of a successful debit, returned again on an idempotent retry.

    ``caller`` is the subject of the principal who asked (the account's own user, or an
    admin or back end acting for it): a key is remembered per subject *and* caller, so a
    user cannot pre-claim a key its back end will use. ``usage`` is the snapshot after the
    debit's ledger entry (at ``version``): stores keep the version, not a copy, and read
    ``priced`` (the model call a priced debit was for) from that entry too."""

    subject: str
    caller: str
    idempotency_key: str | None
    amount: int
    at: datetime
    version: int
    usage: Usage
    replayed: bool = False
    priced: PricedCall | None = None


def fold(entries: Iterable[LedgerEntry]) -> Account | None:
    """Replay entries oldest first: quota, usage and holds by their deltas, the rest by the
    facts each entry records. ``None`` for no entries (an account never stored)."""
    account: Account | None = None
    quota = used = held = 0
    for entry in entries:
        quota += entry.quota_delta
        used += entry.used_delta
        held += entry.held_delta
        version = 1 if account is None else account.version + 1
        # Every field but the counters and the version is a fact the entry records.
        account = attrs.evolve(
            entry.after, token_quota=quota, token_used=used, token_held=held, version=version
        )
    return account
