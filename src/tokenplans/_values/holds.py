"""Holds: tokens reserved before a model call and settled with the actual count after.

A hold is a durable record with an identity, scoped to its subject *and* the caller who
placed it (the user itself, or an admin or back end acting for it): the same id sent by
two callers names two holds, so a user can neither pre-claim nor close the holds its back
end places. Only that caller, or an admin, closes a hold. It is placed open
and closed at most once: settled (its tokens used, possibly more or less than held),
released (nothing used) or expired (its ``expires_at`` passed while it was open). An
expired hold may still be settled late: the call did happen, so its tokens are charged.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from .accounts import Usage
from .described import described
from .limits import MAX_AMOUNT, MAX_HOLD_ID_LENGTH
from .lots import Draw, draws_field
from .model_usage import PricedCall


class HoldStatus(enum.StrEnum):
    """Stored as the value. open -> settled | released | expired, and expired -> settled
    (a late settle); never back to open."""

    OPEN = "open"
    SETTLED = "settled"
    RELEASED = "released"
    EXPIRED = "expired"


#: A hold's identity within its subject: who placed it, and the id they gave it.
HoldKey = tuple[str, str]


@attrs.frozen
class Hold:
    """One reservation of ``amount`` tokens for ``subject``, open until ``expires_at``,
    placed by ``caller`` (the subject of the principal who reserved it).

    ``request`` identifies what was asked for (the amount, or the model call an estimate
    described): a repeated reserve is the same request only when it matches, not merely
    when it costs the same. ``None`` on holds stored before it was recorded.

    Once settled, ``settled`` is the amount charged and ``overage`` the part of it beyond
    what was held and remaining (it may push ``token_used`` above the quota); ``late`` says
    the settle came after the hold expired. ``closed_at`` is when it reached its final
    status. ``replayed`` is true on a result that repeats an earlier one and changed
    nothing; ``priced`` is the model call a priced reserve or settle was priced from, on
    that request's answer; ``usage`` is the account's usage as the request left it, on
    the answers of :class:`~tokenplans.TokenService`'s hold methods (``None`` on a hold
    read from a store). None of the three is stored (the ledger entry records the
    priced call).
    """

    subject: str
    caller: str = attrs.field(
        metadata=described(
            "The subject of the caller who placed the hold (the user, or an admin or back "
            "end acting for it): hold ids are scoped to it, and only it or an admin closes "
            "the hold."
        )
    )
    hold_id: str = attrs.field(metadata=described(min_length=1, max_length=MAX_HOLD_ID_LENGTH))
    amount: int = attrs.field(metadata=described(maximum=MAX_AMOUNT))
    created_at: datetime
    expires_at: datetime
    status: HoldStatus = HoldStatus.OPEN
    settled: int | None = attrs.field(
        default=None, metadata=described("The tokens charged, once settled; else null.")
    )
    overage: int = attrs.field(
        default=0,
        metadata=described("The part of the settled amount beyond what was held and remained."),
    )
    late: bool = attrs.field(default=False, metadata=described("Settled after the hold expired."))
    closed_at: datetime | None = attrs.field(
        default=None,
        metadata=described("When it was settled, released or expired; null while open."),
    )
    request: str | None = None
    #: The lots the held credits came from, in burn order; none recorded when they all
    #: came from the plan lot (docs/credit-lots.md).
    draws: tuple[Draw, ...] = draws_field()
    replayed: bool = attrs.field(default=False, eq=False)
    priced: PricedCall | None = attrs.field(default=None, eq=False)
    usage: Usage | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def key(self) -> HoldKey:
        return (self.caller, self.hold_id)

    @property
    def is_open(self) -> bool:
        return self.status is HoldStatus.OPEN

    def as_of(self, now: datetime) -> Hold:
        """The hold as the account sees it at ``now``: an open hold past its expiry is
        expired, closed at its expiry instant."""
        if self.is_open and self.expires_at <= now:
            return attrs.evolve(self, status=HoldStatus.EXPIRED, closed_at=self.expires_at)
        return self


@attrs.frozen
class HoldWrite:
    """A hold to store with an account change: inserted when ``previous`` is ``None`` (a
    new hold), else replacing the stored hold whose status is ``previous``."""

    hold: Hold
    previous: HoldStatus | None
