"""What each token use case decides on a rolled-forward snapshot, as pure functions.

The update loop fetches the facts a decision needs (the receipt already stored for an
idempotency key, say) before calling one of these; none of them reads a port, so the same
facts always give the same decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

import attrs

from tokenplans._values.accounts import Account, Usage
from tokenplans._values.ledger import Change, DebitReceipt
from tokenplans._values.model_usage import ModelUsage, PricedCall
from tokenplans._values.plans import Plan, PlanCatalog
from tokenplans._values.principal import Principal
from tokenplans._values.records import Record
from tokenplans._values.results import PlanChange
from tokenplans.errors import IdempotencyConflictError

from .permissions import check_can_change_plan
from .quota import change_plan, debit, grant

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
) -> Decision[PlanChange]:
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
    return Decision(change, PlanChange(change.entries[-1].message, Usage.of(change.account)))


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
    if first is not None and idempotency_key is not None:
        if first.amount != amount:
            raise IdempotencyConflictError(idempotency_key, first.amount, amount)
        if _call_of(first.priced) != _call_of(priced):
            raise IdempotencyConflictError(
                idempotency_key,
                first.amount,
                amount,
                f"idempotency key {idempotency_key!r} was first used for another model call",
            )
        return Decision(None, attrs.evolve(first, replayed=True))
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
    )
    return Decision(change, receipt, (receipt,) if idempotency_key is not None else ())


def decide_grant(account: Account, now: datetime, *, amount: int, actor: str) -> Decision[Usage]:
    change = grant(account, amount, now, actor=actor)
    return Decision(change, Usage.of(change.account))


def _call_of(priced: PricedCall | None) -> ModelUsage | None:
    return None if priced is None else priced.usage
