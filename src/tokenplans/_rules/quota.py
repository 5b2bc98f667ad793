"""The quota rules, as pure functions from a snapshot to a :class:`Change`.

README, "How quotas work", states them for users; each function here is one of them.

Nothing here reads a clock or a store: ``now`` and the catalog are arguments, so every
rule can be checked by example and by property, and storage never re-implements one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs

from tokenplans._values.accounts import Account, utc_text, with_lots
from tokenplans._values.ledger import (
    Change,
    DebitFacts,
    EntryKind,
    LotFacts,
    PaymentFacts,
    ledger_change,
)
from tokenplans._values.lots import PLAN_LOT_ID, Lot, LotSource, burn
from tokenplans._values.model_usage import PricedCall
from tokenplans._values.plans import Plan, PlanCatalog
from tokenplans.errors import InsufficientTokensError, InvalidRequestError

from .lots import system_lot_id


def month_start(moment: datetime) -> datetime:
    """Midnight UTC on the first day of ``moment``'s calendar month."""
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(moment: datetime) -> datetime:
    """Midnight UTC on the first day of the month after ``moment``'s."""
    start = month_start(moment)
    if start.month == 12:  # noqa: PLR2004 - December
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def open_account(
    subject: str, catalog: PlanCatalog, now: datetime, *, actor: str | None = None
) -> Change:
    """Opening: a fresh account on the default plan for the calendar month of ``now``."""
    plan = catalog.default_plan
    start = month_start(now)
    nothing = Account(
        subject=subject,
        plan_id=plan.id,
        token_quota=0,
        token_used=0,
        period_start=start,
        period_end=next_month_start(start),
        plan_end_at=None,
        version=0,
    )
    return ledger_change(
        nothing,
        EntryKind.OPENED,
        now,
        message=f"opened on {plan.id}",
        actor=actor,
        token_quota=plan.tokens,
    )


def roll_forward(account: Account, catalog: PlanCatalog, now: datetime) -> Change:
    """Periods, expiry and lazy time: apply every period reset and term expiry due by
    ``now``, each at its own boundary instant, so an account idle for ten years ends
    where one touched at every boundary would. A run of idle calendar months is one
    reset entry: the resets after the first would change nothing but the period."""
    change = Change(account)
    while True:
        current = change.account
        if current.plan_end_at is not None:
            if now < current.plan_end_at:
                return change
            change = change.then(lambda before: _expire_term(before, catalog))
        else:
            if now < current.period_end:
                return change
            change = change.then(
                lambda before: _reset_period(
                    before, catalog, before.period_end if steps_monthly(before, catalog) else now
                )
            )


def next_boundary(account: Account) -> datetime:
    """The instant of the account's next period reset or term expiry."""
    return account.period_end if account.plan_end_at is None else account.plan_end_at


def steps_monthly(account: Account, catalog: PlanCatalog) -> bool:
    """Whether idle months must each be their own reset: the plan rolls unused credits
    over (each month's reset makes a lot). Otherwise a run of idle months is one reset:
    lot expiries between them are lapsed in their turn by the roll-forward's loop."""
    return _plan_or_default(catalog, account.plan_id).rolls_over


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` (a month's start) moved ``months`` calendar months on."""
    total = moment.month - 1 + months
    return moment.replace(year=moment.year + total // 12, month=total % 12 + 1)


def _plan_lot_changed(account: Account, **changes: Any) -> dict[str, Any]:
    """The snapshot fields with the plan lot changed by ``changes``, the others kept."""
    if not account.lots:  # only the plan lot: its fields are the counters
        return {_COUNTER_OF[name]: value for name, value in changes.items()}
    return with_lots([attrs.evolve(account.plan_lot, **changes), *account.lots])


#: A plan lot's field, as the counter that holds it on an account with no other lots.
_COUNTER_OF = {"amount": "token_quota", "used": "token_used", "held": "token_held"}


def _renewed_plan_side(account: Account, tokens: int, end: datetime) -> dict[str, Any]:
    """A renewal's plan side: the plan lot grows by the plan's tokens, and the carry-over
    lots that were to end with the term end with the extended one (exempt, like the plan
    lot: a renewal keeps what an upgrade carried over)."""
    ending = account.plan_end_at
    return with_lots(
        [
            attrs.evolve(account.plan_lot, amount=account.plan_lot.amount + tokens),
            *(
                attrs.evolve(lot, expires_at=end)
                if _is_carry_over(lot) and ending is not None and lot.expires_at == ending
                else lot
                for lot in account.lots
            ),
        ]
    )


def _is_carry_over(lot: Lot) -> bool:
    return lot.source is LotSource.CARRY_OVER


def _new_period(account: Account, at: datetime, **changes: Any) -> dict[str, Any]:
    """The snapshot fields at a period boundary ``at`` (a reset, a term's end): the plan
    lot changed by ``changes``, and the carry-over lots due by then lapse with it, their
    held credits staying held on the plan lot (their holds close against it), as a
    period's allowance lapses."""
    if not account.lots:
        return _plan_lot_changed(account, **changes)
    due = [
        lot
        for lot in account.lots
        if _is_carry_over(lot) and lot.expires_at is not None and lot.expires_at <= at
    ]
    plan = attrs.evolve(account.plan_lot, **changes)
    plan = attrs.evolve(plan, held=plan.held + sum(lot.held for lot in due))
    return with_lots([plan, *(lot for lot in account.lots if lot not in due)])


def _expire_term(account: Account, catalog: PlanCatalog) -> Change:
    ended = account.plan_end_at
    if ended is None:  # pragma: no cover - roll_forward only expires a term that has an end
        raise ValueError("an account without a term cannot expire")
    fallback = catalog.default_plan
    return ledger_change(
        account,
        EntryKind.TERM_EXPIRED,
        ended,
        message=f"{account.plan_id} term ended; back on {fallback.id}",
        plan_id=fallback.id,
        **_new_period(account, ended, amount=fallback.tokens, used=0),
        period_start=month_start(ended),
        period_end=next_month_start(ended),
        plan_end_at=None,
    )


def _reset_period(account: Account, catalog: PlanCatalog, now: datetime) -> Change:
    # A plan dropped from the catalog since the account joined it falls back to the default.
    plan = _plan_or_default(catalog, account.plan_id)
    old = account.plan_lot
    reset = ledger_change(
        account,
        EntryKind.PERIOD_RESET,
        account.period_end,
        message="new calendar month",
        plan_id=plan.id,
        **_new_period(account, account.period_end, amount=plan.tokens, used=0),
        period_start=month_start(now),
        period_end=next_month_start(now),
    )
    rolled = min(plan.rollover_max or 0, old.remaining)
    if rolled <= 0 or plan.rollover_periods is None:
        return reset
    return reset.then(
        lambda before: _roll_over(before, rolled, account.period_end, plan.rollover_periods or 1)
    )


def _roll_over(account: Account, amount: int, at: datetime, periods: int) -> Change:
    """A rollover lot of ``amount``, made at the reset instant ``at`` and expiring at the
    end of the ``periods``-th period after the one that ended."""
    lot = Lot(
        lot_id=system_lot_id(LotSource.ROLLOVER, account.version + 1),
        source=LotSource.ROLLOVER,
        amount=amount,
        effective_at=at,
        expires_at=add_months(at, periods),
    )
    return ledger_change(
        account,
        EntryKind.ROLLED_OVER,
        at,
        message=f"{amount} unused rolled over until {utc_text(lot.expires_at or at)}",
        amount=amount,
        facts=LotFacts(lot.lot_id),
        **with_lots([*account.all_lots, lot]),
    )


def _plan_or_default(catalog: PlanCatalog, plan_id: str) -> Plan:
    return catalog.get(plan_id) if plan_id in catalog else catalog.default_plan


def change_plan(
    account: Account,
    target: Plan,
    catalog: PlanCatalog,
    now: datetime,
    *,
    reset_used: bool = False,
    actor: str | None = None,
    payment_id: str | None = None,
) -> Change:
    """Upgrade with carry-over, confirm the same plan, or downgrade (README, "How quotas
    work"). A downgrade sets the quota to the target's tokens, or keeps it if that is
    less.

    Open holds survive every plan change. An upgrade carries over what the old quota still
    backs, ``max(0, token_quota - token_used)``, held tokens included (they stay held): a
    hold that outlived the quota backing it (a downgrade, a new month, a term end cut it)
    is honoured when settled, but is not carried over as new tokens on top.
    The message is on the entry (``change.entries[-1].message``).
    """
    current = _plan_or_default(catalog, account.plan_id)
    why: dict[str, Any] = {"actor": actor, "facts": _paid_by(payment_id)}
    if target.rank > current.rank:
        if target.duration_days is None:
            term: dict[str, Any] = _calendar_month(now)
        else:
            end = now + timedelta(days=target.duration_days)
            term = {"period_start": now, "period_end": end, "plan_end_at": end}
        return ledger_change(
            account,
            EntryKind.PLAN_CHANGED,
            now,
            message=f"upgraded to {target.id} with carry-over",
            plan_id=target.id,
            **with_lots(
                [
                    _fresh_plan_lot(target),
                    *_carry_over(account, now, term["period_end"]),
                    *_without_carry_overs(account),
                ]
            ),
            **term,
            **why,
        )
    if target.rank == current.rank:
        return ledger_change(
            account,
            EntryKind.PLAN_CHANGED,
            now,
            message="plan confirmed",
            plan_id=target.id,
            **_plan_side_used(account, reset_used=reset_used),
            **why,
        )
    term = _calendar_month(now) if target.duration_days is None else {}
    return ledger_change(
        account,
        EntryKind.PLAN_CHANGED,
        now,
        message=f"downgraded to {target.id}",
        plan_id=target.id,
        # Never more than the account had: a lower tier with more tokens (a paid plan
        # below an assigned trial) must not be a way to its tokens without paying.
        **_downgraded(account, target, reset_used=reset_used),
        **term,
        **why,
    )


def _fresh_plan_lot(plan: Plan) -> Lot:
    """A plan lot with the plan's tokens, nothing used or held (its instants are the
    account's period, see :attr:`Account.plan_lot`)."""
    return Lot(lot_id=PLAN_LOT_ID, source=LotSource.PLAN, amount=plan.tokens)


def _carry_over(account: Account, now: datetime, expires_at: datetime) -> list[Lot]:
    """An upgrade's carry-over lot: what the plan lot and the carry-over lots of earlier
    upgrades still back, ``max(0, amount - used)``, holding their held credits (their open
    holds move to it whole); none when that is nothing at all."""
    side = [account.plan_lot, *filter(_is_carry_over, account.lots)]
    amount = max(0, sum(lot.amount - lot.used for lot in side))
    held = sum(lot.held for lot in side)
    if amount == 0 and held == 0:
        return []
    return [
        Lot(
            lot_id=carry_over_id(account),
            source=LotSource.CARRY_OVER,
            amount=amount,
            held=held,
            effective_at=now,
            expires_at=expires_at,
        )
    ]


def _without_carry_overs(account: Account) -> list[Lot]:
    return [lot for lot in account.lots if not _is_carry_over(lot)]


def _plan_side_used(account: Account, *, reset_used: bool) -> dict[str, Any]:
    """``reset_used`` on the plan side: the plan lot and the carry-over lots."""
    if not reset_used:
        return with_lots(account.all_lots)
    return with_lots(
        [
            attrs.evolve(lot, used=0) if lot.is_plan or _is_carry_over(lot) else lot
            for lot in account.all_lots
        ]
    )


def _downgraded(account: Account, target: Plan, *, reset_used: bool) -> dict[str, Any]:
    """A downgrade's plan side: the plan lot and the carry-over lots keep at most the
    target's tokens between them (cut from the carry-over lots first); the other lots
    are not touched."""
    lots = _plan_side_used(account, reset_used=reset_used)["lots"]
    plan = attrs.evolve(account.plan_lot, used=0 if reset_used else account.plan_lot.used)
    carries = [lot for lot in lots if _is_carry_over(lot)]
    others = [lot for lot in lots if not _is_carry_over(lot)]
    cut = max(0, plan.amount + sum(lot.amount for lot in carries) - target.tokens)
    kept = []
    for lot in carries:
        part = min(cut, lot.amount)
        cut -= part
        cut_lot = attrs.evolve(lot, amount=lot.amount - part)
        if cut_lot.amount or cut_lot.used or cut_lot.held:
            kept.append(cut_lot)
    plan = attrs.evolve(plan, amount=plan.amount - min(cut, plan.amount))
    return with_lots([plan, *kept, *others])


def carry_over_id(account: Account) -> str:
    """The id of the carry-over lot an upgrade of ``account`` makes."""
    return system_lot_id(LotSource.CARRY_OVER, account.version + 1)


def _paid_by(payment_id: str | None) -> PaymentFacts | None:
    return None if payment_id is None else PaymentFacts(payment_id)


def _calendar_month(now: datetime) -> dict[str, Any]:
    return {
        "period_start": month_start(now),
        "period_end": next_month_start(now),
        "plan_end_at": None,
    }


def debit(
    account: Account,
    amount: int,
    now: datetime,
    *,
    idempotency_key: str | None = None,
    actor: str | None = None,
    priced: PricedCall | None = None,
) -> Change:
    """Debit: consume ``amount`` tokens (checked by the caller, see
    :func:`~tokenplans._values.limits.check_amount`), or :class:`InsufficientTokensError`
    (no change). ``priced``: the model call the amount is the price of."""
    if amount > account.remaining:
        raise InsufficientTokensError(requested=amount, remaining=account.remaining)
    if not account.lots:  # only the plan lot: every credit is its own, no draws
        counters: dict[str, Any] = {"token_used": account.token_used + amount}
        facts = None if idempotency_key is None else DebitFacts(idempotency_key)
    else:
        lots, draws, _ = burn(account.all_lots, amount)
        counters = with_lots(lots)
        facts = DebitFacts(idempotency_key, draws)
    return ledger_change(
        account,
        EntryKind.DEBITED,
        now,
        message=f"debited {amount}" + for_call(priced),
        amount=amount,
        actor=actor,
        priced=priced,
        facts=facts,
        **counters,
    )


def for_call(priced: PricedCall | None) -> str:
    """The end of a priced entry's message: the model and the price version."""
    if priced is None:
        return ""
    return f" for {priced.usage.model} at prices {priced.price_version}"


def grant(account: Account, amount: int, now: datetime, *, actor: str | None = None) -> Change:
    """Grant: add ``amount`` tokens (checked by the caller) to this period's quota; they
    lapse with the period."""
    return ledger_change(
        account,
        EntryKind.GRANTED,
        now,
        message=f"granted {amount}",
        amount=amount,
        actor=actor,
        **_plan_lot_changed(account, amount=account.plan_lot.amount + amount),
    )


def renew(
    account: Account,
    plan: Plan,
    now: datetime,
    *,
    payment_id: str | None = None,
    actor: str | None = None,
) -> Change:
    """Paid renewal of the plan the account is on: the term grows by the plan's
    ``duration_days`` from its current end (or from now, if it had none) and the quota
    by the plan's tokens."""
    if plan.id != account.plan_id or plan.duration_days is None:
        raise InvalidRequestError(f"cannot renew {plan.id!r} on an account on {account.plan_id!r}")
    term = timedelta(days=plan.duration_days)
    if account.plan_end_at is not None and account.plan_end_at > now:
        start, end = account.period_start, account.plan_end_at + term
    else:
        start, end = now, now + term
    return ledger_change(
        account,
        EntryKind.RENEWED,
        now,
        message=f"renewed {plan.id} until {utc_text(end)}",
        actor=actor,
        facts=_paid_by(payment_id),
        **_renewed_plan_side(account, plan.tokens, end),
        period_start=start,
        period_end=end,
        plan_end_at=end,
    )
