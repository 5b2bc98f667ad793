"""What ``check`` answers: whether a debit of so many credits, or a feature, is allowed
now, and why (docs/quotas.md, "Asking before a call")."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from .described import described


class CheckReason(enum.Enum):
    """Why a check was answered as it was."""

    OK = "ok"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    FEATURE_NOT_IN_PLAN = "feature_not_in_plan"


@attrs.frozen
class CheckResult:
    """The answer to a check, written nowhere: ``allowed`` and its ``reason``; the
    credits asked about (``requested``: none for a feature), what remains and when the
    period ends (``resets_at``), and the plan that decided."""

    allowed: bool
    reason: CheckReason
    requested: int | None = attrs.field(
        metadata=described("The credits asked about (an amount, or an estimate's price).")
    )
    remaining: int = attrs.field(metadata=described("What may be debited or reserved now."))
    resets_at: datetime = attrs.field(
        metadata=described("The end of the current period: when the allowance resets.")
    )
    plan: str = attrs.field(metadata=described("The account's plan."))
