"""What each token use case decides on a rolled-forward snapshot, as pure functions.

The update loop fetches the facts a decision needs (the receipt already stored for an
idempotency key, say) before calling one of these; none of them reads a port, so the same
facts always give the same decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Generic, TypeVar

import attrs

from tokenplans._values.accounts import Account, Usage, utc_text
from tokenplans._values.holds import Hold, HoldKey
from tokenplans._values.ledger import (
    CONSUMED,
    GRANTED,
    Change,
    DebitReceipt,
    EntryKind,
    plan_request,
)
from tokenplans._values.lots import MAX_LIVE_LOTS, PLAN_LOT_ID, Lot, LotSource, LotStatus
from tokenplans._values.model_usage import ModelUsage, PricedCall
from tokenplans._values.plans import Plan, PlanCatalog
from tokenplans._values.principal import Principal
from tokenplans._values.records import Record
from tokenplans._values.results import PlanChange
from tokenplans.errors import (
    IdempotencyConflictError,
    InvalidRequestError,
    LotConflictError,
    LotNotFoundError,
    TooManyLotsError,
)

from .lots import add_lot, forfeit, move_plan_holds, system_lot_id
from .permissions import check_can_change_plan
from .quota import carry_over_id, change_plan, debit, grant

T = TypeVar("T")


@attrs.frozen
class Decision(Generic[T]):
    """What a use case decided on a snapshot: the change to commit (``None``: nothing to
    write), the result to return once it commits, and the records that commit with it."""

    change: Change | None
    result: T
    records: tuple[Record, ...] = ()


def decide_plan_change(
    account: Account,
    now: datetime,
    *,
    principal: Principal,
    target: Plan,
    catalog: PlanCatalog,
    reset_used: bool,
    idempotency_key: str | None = None,
    first: DebitReceipt | None = None,
    holds: Mapping[HoldKey, Hold] | None = None,
) -> Decision[PlanChange]:
    """Change the plan, or replay ``first`` (the receipt stored for the key, if any: a
    retry of a change made, whatever the account did since)."""
    request = plan_request(target.id, reset_used=reset_used)
    if (replayed := _replayed(first, idempotency_key, request, 0)) is not None:
        return Decision(None, PlanChange(replayed.message, replayed.usage))
    check_can_change_plan(
        principal,
        account.subject,
        # As the rules do: a plan dropped from the catalog ranks as the default.
        current=(
            catalog.get(account.plan_id) if account.plan_id in catalog else catalog.default_plan
        ),
        target=target,
        reset_used=reset_used,
    )
    if target.id == account.plan_id and not (reset_used and account.token_used):
        # Nothing would change but the version: write nothing, so a client calling this
        # in a loop costs reads only.
        return Decision(None, PlanChange("plan confirmed", Usage.of(account)))
    change = change_plan(
        account, target, catalog, now, reset_used=reset_used, actor=principal.subject
    )
    message = change.entries[-1].message
    usage = Usage.of(change.account)
    receipt = _receipt(change, idempotency_key, actor=principal.subject, amount=0, request=request)
    moved = holds_moved(account, change, holds or {})
    return Decision(change, PlanChange(message, usage), (*receipt, *moved))


def holds_moved(
    before: Account, change: Change, holds: Mapping[HoldKey, Hold]
) -> tuple[Record, ...]:
    """The open holds an upgrade moved to its carry-over lot, rewritten (their plan-lot
    credits are the carry-over lot's now)."""
    carried = carry_over_id(before)
    if not any(lot.lot_id == carried for lot in change.account.lots):
        return ()
    side = [PLAN_LOT_ID, *(lot.lot_id for lot in before.lots if lot.source is LotSource.CARRY_OVER)]
    return move_plan_holds(holds, side, carried)


def decide_debit(
    account: Account,
    now: datetime,
    *,
    amount: int,
    idempotency_key: str | None,
    actor: str,
    first: DebitReceipt | None,
    priced: PricedCall | None = None,
) -> Decision[DebitReceipt]:
    """Debit ``amount`` (the price of the ``priced`` call, if any), or replay ``first``
    (the receipt stored for the key, if any). A retry is the same request only when the
    whole request matches: its amount, and for a priced one the model call (model and
    every token count), not merely its credits."""
    if (replayed := _replayed(first, idempotency_key, CONSUMED, amount)) is not None:
        if _call_of(replayed.priced) != _call_of(priced):
            raise IdempotencyConflictError(
                str(idempotency_key),
                replayed.amount,
                amount,
                f"idempotency key {idempotency_key!r} was first used for another model call",
            )
        return Decision(None, attrs.evolve(replayed, replayed=True))
    change = debit(
        account, amount, now, idempotency_key=idempotency_key, actor=actor, priced=priced
    )
    receipt = DebitReceipt(
        subject=account.subject,
        caller=actor,
        idempotency_key=idempotency_key,
        amount=amount,
        at=now,
        version=change.account.version,
        usage=Usage.of(change.account),
        priced=priced,
        message=change.entries[-1].message,
    )
    return Decision(change, receipt, (receipt,) if idempotency_key is not None else ())


def decide_grant(
    account: Account,
    now: datetime,
    *,
    amount: int,
    actor: str,
    idempotency_key: str | None = None,
    first: DebitReceipt | None = None,
) -> Decision[Usage]:
    """Grant ``amount``, or replay ``first`` (the receipt stored for the key, if any)."""
    if (replayed := _replayed(first, idempotency_key, GRANTED, amount)) is not None:
        return Decision(None, replayed.usage)
    change = grant(account, amount, now, actor=actor)
    receipt = _receipt(change, idempotency_key, actor=actor, amount=amount, request=GRANTED)
    return Decision(change, Usage.of(change.account), receipt)


def _replayed(
    first: DebitReceipt | None, idempotency_key: str | None, request: str, amount: int
) -> DebitReceipt | None:
    """``first`` when it is the receipt of this very request (a retry), ``None`` when
    there is none; a key first used for another request (another kind, plan or amount)
    is a conflict."""
    if first is None or idempotency_key is None:
        return None
    if first.request != request:
        raise IdempotencyConflictError(
            idempotency_key,
            first.amount,
            amount,
            f"idempotency key {idempotency_key!r} was first used for another request "
            f"({first.request})",
        )
    if first.amount != amount:
        raise IdempotencyConflictError(idempotency_key, first.amount, amount)
    return first


def _receipt(
    change: Change, idempotency_key: str | None, *, actor: str, amount: int, request: str
) -> tuple[DebitReceipt, ...]:
    """The receipt a grant or plan change made with a key commits with (none without)."""
    if idempotency_key is None:
        return ()
    last = change.entries[-1]
    receipt = DebitReceipt(
        subject=change.account.subject,
        caller=actor,
        idempotency_key=idempotency_key,
        amount=amount,
        at=last.at,
        version=change.account.version,
        usage=Usage.of(change.account),
        request=request,
        message=last.message,
    )
    return (receipt,)


def _call_of(priced: PricedCall | None) -> ModelUsage | None:
    return None if priced is None else priced.usage


#: The caller a grant's lot id is remembered under: lot ids are unique per subject,
#: whoever grants (no principal has an empty subject).
LOT_CALLER = ""


def expires_at_of(expires: str | None, account: Account, now: datetime) -> datetime | None:
    """A grant's ``expires``: ``"period"`` (the default: the current period's end),
    ``"never"``, or an aware ISO 8601 instant after ``now``."""
    if expires is None or expires == "period":
        return account.period_end
    if expires == "never":
        return None
    try:
        moment = datetime.fromisoformat(expires)
    except ValueError:
        raise InvalidRequestError(
            'expires must be "period", "never" or an ISO 8601 instant'
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRequestError("expires must carry its offset (e.g. 2027-01-01T00:00:00Z)")
    moment = moment.astimezone(UTC)
    if moment <= now:
        raise InvalidRequestError(f"expires {utc_text(moment)} is not in the future")
    return moment


def decide_grant_lot(
    account: Account,
    now: datetime,
    *,
    amount: int,
    expires: str | None,
    priority: int,
    lot_id: str | None,
    actor: str,
    first: DebitReceipt | None = None,
) -> Decision[Usage]:
    """Grant ``amount`` as a promotional lot of its own, or replay ``first`` (the receipt
    the ``lot_id`` left: the same grant again); the same id for another grant, or the id
    of another live lot, is a :class:`LotConflictError`."""
    expires_at = expires_at_of(expires, account, now)
    if expires in (None, "period") or expires_at is None:
        shown = "period" if expires in (None, "period") else "never"
    else:
        shown = utc_text(expires_at)
    request = f"lot {amount} {shown} {priority}"
    if first is not None and lot_id is not None:
        if first.request != request:
            raise LotConflictError(
                lot_id, f"lot {lot_id!r} was granted with other fields ({first.request})"
            )
        return Decision(None, first.usage)
    if lot_id is not None and any(lot.lot_id == lot_id for lot in account.lots):
        raise LotConflictError(lot_id, f"lot {lot_id!r} exists already")
    if len(account.live_lots) >= MAX_LIVE_LOTS:
        raise TooManyLotsError(MAX_LIVE_LOTS)
    chosen = lot_id or system_lot_id(LotSource.PROMOTIONAL, account.version + 1)
    lot = Lot(
        lot_id=chosen,
        source=LotSource.PROMOTIONAL,
        amount=amount,
        priority=priority,
        effective_at=now,
        expires_at=expires_at,
        created_by=actor,
    )
    until = "never expiring" if expires_at is None else f"until {utc_text(expires_at)}"
    change = add_lot(
        account,
        lot,
        now,
        kind=EntryKind.LOT_GRANTED,
        message=f"granted {amount} as lot {chosen}, {until}",
        actor=actor,
    )
    receipts = _receipt(change, lot_id, actor=LOT_CALLER, amount=amount, request=request)
    return Decision(change, Usage.of(change.account), receipts)


def decide_void(account: Account, now: datetime, *, lot_id: str, actor: str) -> Decision[Usage]:
    """Void the live lot ``lot_id``: its free remainder is forfeited, what is used stays
    used, and what open holds hold is forfeited when they close. Voiding a lot that has
    expired or was voided changes nothing."""
    found = next((lot for lot in account.lots if lot.lot_id == lot_id), None)
    if found is None:
        raise LotNotFoundError(lot_id)
    if found.status is not LotStatus.ACTIVE:
        return Decision(None, Usage.of(account))
    change = forfeit(account, lot_id, now, voided=True, actor=actor)
    return Decision(change, Usage.of(change.account))
