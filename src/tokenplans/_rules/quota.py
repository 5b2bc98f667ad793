"""The quota rules, as pure functions from a snapshot to a :class:`Change`.

README, "How quotas work", states them for users; each function here is one of them.

Nothing here reads a clock or a store: ``now`` and the catalog are arguments, so every
rule can be checked by example and by property, and storage never re-implements one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tokenplans._values.accounts import Account, utc_text
from tokenplans._values.ledger import (
    Change,
    DebitFacts,
    EntryKind,
    PaymentFacts,
    ledger_change,
)
from tokenplans._values.model_usage import PricedCall
from tokenplans._values.plans import Plan, PlanCatalog
from tokenplans.errors import InsufficientTokensError, InvalidRequestError


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
            change = change.then(lambda before: _reset_period(before, catalog, now))


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
        token_quota=fallback.tokens,
        token_used=0,
        period_start=month_start(ended),
        period_end=next_month_start(ended),
        plan_end_at=None,
    )


def _reset_period(account: Account, catalog: PlanCatalog, now: datetime) -> Change:
    # A plan dropped from the catalog since the account joined it falls back to the default.
    plan = _plan_or_default(catalog, account.plan_id)
    return ledger_change(
        account,
        EntryKind.PERIOD_RESET,
        account.period_end,
        message="new calendar month",
        plan_id=plan.id,
        token_quota=plan.tokens,
        token_used=0,
        period_start=month_start(now),
        period_end=next_month_start(now),
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
            token_quota=target.tokens + max(0, account.token_quota - account.token_used),
            token_used=0,
            **term,
            **why,
        )
    used = 0 if reset_used else account.token_used
    if target.rank == current.rank:
        return ledger_change(
            account,
            EntryKind.PLAN_CHANGED,
            now,
            message="plan confirmed",
            plan_id=target.id,
            token_used=used,
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
        token_quota=min(target.tokens, account.token_quota),
        token_used=used,
        **term,
        **why,
    )


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
    return ledger_change(
        account,
        EntryKind.DEBITED,
        now,
        message=f"debited {amount}" + for_call(priced),
        amount=amount,
        actor=actor,
        priced=priced,
        facts=None if idempotency_key is None else DebitFacts(idempotency_key),
        token_used=account.token_used + amount,
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
        token_quota=account.token_quota + amount,
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
        token_quota=account.token_quota + plan.tokens,
        period_start=start,
        period_end=end,
        plan_end_at=end,
    )
