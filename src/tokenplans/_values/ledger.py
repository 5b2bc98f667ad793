"""Ledger entries: the append-only facts that explain every account snapshot.

Each entry says what happened (``kind``), when it took effect, by how much the quota,
the usage and the held tokens moved, who asked, and the snapshot after it: what every
kind has. What only some kinds know (a debit's idempotency key, a hold's id and overage,
the payment behind a plan change) is the entry's ``facts``, one small value per kind
(:data:`FACTS_OF_KIND`). :func:`fold` replays entries; it must reproduce the stored
snapshot exactly.

A new kind with a new fact is a member of :class:`EntryKind` and a facts class here
(named in :data:`EntryFacts`, :data:`FACTS_OF_KIND` and :data:`FACT_CLASSES`), plus the
rule that enters it: stores keep facts as one JSON value and the HTTP ledger shows their
fields, both read from the class.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from .accounts import Account, Usage
from .lots import Draw, draws_field, draws_of
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
    LOT_GRANTED = "lot_granted"
    LOT_PURCHASED = "lot_purchased"
    LOT_EXPIRED = "lot_expired"
    LOT_VOIDED = "lot_voided"
    ROLLED_OVER = "rolled_over"


@attrs.frozen
class DebitFacts:
    """A debit's: the idempotency key it was made with (a debit without one has none),
    and the lots it drew from, in burn order (none recorded when the account has only its
    plan lot: then every credit is the plan lot's)."""

    idempotency_key: str | None = None
    draws: tuple[Draw, ...] = draws_field()


@attrs.frozen
class HoldFacts:
    """A hold entry's: the hold it placed, settled, released or expired, and on a settle
    the part of the amount beyond what was held and remaining (``overage``)."""

    hold_id: str
    overage: int | None = None
    draws: tuple[Draw, ...] = draws_field()


@attrs.frozen
class LotFacts:
    """A lot entry's: the lot granted, purchased, expired, voided or rolled over into,
    and the draws of credits it repaid (a plan lot's overage debt) when it was made."""

    lot_id: str
    draws: tuple[Draw, ...] = draws_field()


@attrs.frozen
class PaymentFacts:
    """A plan change's, renewal's or grant's, when a payment bought it: our payment's
    id."""

    payment_id: str


#: The facts an entry may carry, one class per kind of fact. Their fields are JSON
#: scalars (text, integers, booleans or ``None``): stores keep them as one JSON value.
EntryFacts = DebitFacts | HoldFacts | PaymentFacts | LotFacts

#: Which facts each kind carries. A kind not named carries none; an entry of a named kind
#: may carry none too (a debit without an idempotency key, a plan change nobody paid for).
FACTS_OF_KIND: Mapping[EntryKind, type[EntryFacts]] = {
    EntryKind.DEBITED: DebitFacts,
    EntryKind.PLAN_CHANGED: PaymentFacts,
    EntryKind.RENEWED: PaymentFacts,
    EntryKind.GRANTED: PaymentFacts,
    EntryKind.HOLD_PLACED: HoldFacts,
    EntryKind.HOLD_SETTLED: HoldFacts,
    EntryKind.HOLD_RELEASED: HoldFacts,
    EntryKind.HOLD_EXPIRED: HoldFacts,
    EntryKind.LOT_GRANTED: LotFacts,
    EntryKind.LOT_PURCHASED: LotFacts,
    EntryKind.LOT_EXPIRED: LotFacts,
    EntryKind.LOT_VOIDED: LotFacts,
    EntryKind.ROLLED_OVER: LotFacts,
}

#: Every facts class, in the order the HTTP ledger shows their fields.
FACT_CLASSES: tuple[type[EntryFacts], ...] = (DebitFacts, PaymentFacts, HoldFacts, LotFacts)


def _facts_fit_the_kind(entry: LedgerEntry, _field: object, facts: EntryFacts | None) -> None:
    if facts is not None and type(facts) is not FACTS_OF_KIND.get(entry.kind):
        raise TypeError(f"a {entry.kind.value} entry cannot carry {facts!r}")


@attrs.frozen
class LedgerEntry:
    """One change to one account. ``after.version`` is the entry's sequence number.

    Every kind moves the quota, the usage and the held tokens by its deltas
    (``held_delta`` is non-zero on hold entries only) and may name an ``amount`` and the
    ``actor`` (the principal who asked). A debit, hold or settle priced from a model
    call's usage records it in ``priced`` (its ``credits`` are the entry's ``amount``).
    What only its kind knows is ``facts`` (see :data:`FACTS_OF_KIND`), read by its class::

        match entry.facts:
            case HoldFacts(hold_id=hold_id, overage=overage):
                ...
    """

    kind: EntryKind
    at: datetime
    quota_delta: int
    used_delta: int
    after: Account
    amount: int | None = None
    actor: str | None = None
    message: str = ""
    held_delta: int = 0
    priced: PricedCall | None = None
    facts: EntryFacts | None = attrs.field(default=None, validator=_facts_fit_the_kind)

    @property
    def subject(self) -> str:
        return self.after.subject

    @property
    def version(self) -> int:
        return self.after.version


def facts_json(facts: EntryFacts | None) -> dict[str, Any] | None:
    """The facts as a JSON object, field by field (``None`` for none): what stores keep.
    Draws are a list of ``{lot_id, amount}`` objects, left out when there are none."""
    if facts is None:
        return None
    shown = attrs.asdict(facts, recurse=False)
    if "draws" in shown:
        draws = shown.pop("draws")
        if draws:
            shown["draws"] = [attrs.asdict(draw) for draw in draws]
    return shown


def facts_from_json(kind: EntryKind, stored: Mapping[str, Any] | None) -> EntryFacts | None:
    """The facts of a ``kind`` entry, from what :func:`facts_json` made of them."""
    if stored is None:
        return None
    if "draws" in stored:
        stored = {**stored, "draws": draws_of(stored["draws"])}
    return FACTS_OF_KIND[kind](**stored)


@attrs.frozen
class Change:
    """A snapshot plus the entries that led to it from the stored one; rules chain with
    :meth:`then`, so one request's roll-forward and its own change commit together."""

    account: Account
    entries: tuple[LedgerEntry, ...] = ()

    def then(self, rule: Callable[[Account], Change]) -> Change:
        following = rule(self.account)
        return Change(following.account, self.entries + following.entries)


def ledger_change(
    before: Account,
    kind: EntryKind,
    at: datetime,
    *,
    message: str,
    amount: int | None = None,
    actor: str | None = None,
    priced: PricedCall | None = None,
    facts: EntryFacts | None = None,
    **changes: Any,
) -> Change:
    """``before`` changed by ``changes`` (snapshot fields) as its next version, with the
    one ledger entry that says so. The deltas are computed, so they cannot disagree with
    the snapshots: every rule changes an account through this."""
    after = attrs.evolve(before, version=before.version + 1, **changes)
    entry = LedgerEntry(
        kind=kind,
        at=at,
        quota_delta=after.token_quota - before.token_quota,
        used_delta=after.token_used - before.token_used,
        held_delta=after.token_held - before.token_held,
        after=after,
        amount=amount,
        actor=actor,
        message=message,
        priced=priced,
        facts=facts,
    )
    return Change(after, (entry,))


#: A receipt's ``request`` for a debit and for a grant.
CONSUMED = "consume"
GRANTED = "grant"


def plan_request(plan_id: str, *, reset_used: bool) -> str:
    """A receipt's ``request`` for a plan change: the target plan, and ``reset_used``."""
    return f"set-plan {plan_id}{' reset-used' if reset_used else ''}"


@attrs.frozen
class DebitReceipt:
    """The remembered result of a successful debit, returned again on an idempotent retry
    (grants and plan changes sent with a key keep one too: ``request`` says which).

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
    #: What the key was first used for (:data:`CONSUMED`, :data:`GRANTED`, or a plan
    #: change's :func:`plan_request`): a key reused for another request is a conflict.
    request: str = CONSUMED
    #: The message of the receipt's ledger entry (stores read it from there, like the usage).
    message: str = ""


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
