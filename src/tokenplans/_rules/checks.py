"""The rule of ``check``: would this debit, this reserve or this feature be allowed now?
A pure function of the account as of now and its plan's features; it writes nothing."""

from __future__ import annotations

from collections.abc import Collection

from tokenplans._values.accounts import Account
from tokenplans._values.checks import CheckReason, CheckResult


def decide_check(
    account: Account,
    features: Collection[str],
    *,
    requested: int | None = None,
    feature: str | None = None,
) -> CheckResult:
    """Whether ``requested`` credits may be debited or reserved from ``account`` (the
    debit and reserve rules' own test: no more than its ``remaining``), or whether its
    plan's ``features`` list ``feature``; exactly one of the two is asked."""
    if (requested is None) == (feature is None):
        raise ValueError("a check asks about credits or a feature: exactly one of them")
    if feature is not None:
        allowed = feature in features
        reason = CheckReason.OK if allowed else CheckReason.FEATURE_NOT_IN_PLAN
    else:
        allowed = requested is not None and requested <= account.remaining
        reason = CheckReason.OK if allowed else CheckReason.INSUFFICIENT_CREDITS
    return CheckResult(
        allowed=allowed,
        reason=reason,
        requested=requested,
        remaining=account.remaining,
        resets_at=account.period_end,
        plan=account.plan_id,
    )
