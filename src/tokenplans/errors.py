"""Every error tokenplans raises, each carrying the facts a caller needs to answer well.

An import-free leaf, like ``attrs.exceptions``: it imports nothing from tokenplans (not
even for type checking), so every layer may raise these and nothing forms a cycle
through them. Adapters map them to their own world in one place (HTTP status codes, CLI
exit codes); nothing else in an adapter needs to know the rules behind them. The
errors are re-exported by :mod:`tokenplans` too.

An error that carries a hold or a debit receipt types it by the facts its callers
read (:class:`HoldSummary`, :class:`ReceiptSummary`): the value is the
:class:`tokenplans.Hold` or :class:`tokenplans.DebitReceipt` itself.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Protocol

__all__ = [
    "AccountBusyError",
    "AlreadyProcessedError",
    "AuthenticationError",
    "CatalogError",
    "DuplicateRequestError",
    "FeatureNotInPlanError",
    "GatewayError",
    "HoldConflictError",
    "HoldNotFoundError",
    "HoldSummary",
    "IdempotencyConflictError",
    "InsufficientTokensError",
    "InvalidRequestError",
    "LotConflictError",
    "LotNotFoundError",
    "PaymentError",
    "PaymentNotFoundError",
    "PermissionDeniedError",
    "PriceBookError",
    "ReceiptSummary",
    "RequestInProgressError",
    "StorageUnavailableError",
    "TokenplansError",
    "TooManyHoldsError",
    "TooManyLotsError",
    "TooManyOrdersError",
    "UnknownModelError",
    "UnknownPackError",
    "UnknownPlanError",
    "WriteConflictError",
]


class HoldSummary(Protocol):
    """What an error says about a hold (a :class:`tokenplans.Hold` is one)."""

    @property
    def hold_id(self) -> str: ...
    @property
    def status(self) -> enum.Enum: ...
    @property
    def amount(self) -> int: ...
    @property
    def settled(self) -> int | None: ...
    @property
    def expires_at(self) -> datetime: ...


class ReceiptSummary(Protocol):
    """What an error says about a remembered debit (a :class:`tokenplans.DebitReceipt`
    is one)."""

    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def amount(self) -> int: ...


class TokenplansError(Exception):
    """Base of every error tokenplans raises on purpose."""


class CatalogError(TokenplansError, ValueError):
    """A plan catalog is invalid; the message names the entry and the problem."""


class UnknownPlanError(TokenplansError, LookupError):
    """A plan id that the catalog does not have."""

    def __init__(self, plan_id: str) -> None:
        super().__init__(f"unknown plan {plan_id!r}")
        self.plan_id = plan_id


class UnknownPackError(TokenplansError, LookupError):
    """A pack id that the catalog does not have."""

    def __init__(self, pack_id: str) -> None:
        super().__init__(f"unknown pack {pack_id!r}")
        self.pack_id = pack_id


class InvalidRequestError(TokenplansError, ValueError):
    """A request the rules refuse whatever the account holds (amount out of range...)."""


class PriceBookError(TokenplansError, ValueError):
    """A price book (or a pricer's configuration) is invalid; the message names the model
    and field, so a bad file fails at start-up rather than on the first bill."""


class UnknownModelError(TokenplansError, LookupError):
    """The pricer has no rate for this model and no ``default``: nothing was charged."""

    def __init__(self, model: str) -> None:
        super().__init__(f"unknown model {model!r}")
        self.model = model


class InsufficientTokensError(TokenplansError):
    """A debit larger than what remains; nothing was changed."""

    def __init__(self, requested: int, remaining: int) -> None:
        super().__init__(f"insufficient tokens: requested {requested}, remaining {remaining}")
        self.requested = requested
        self.remaining = remaining


class IdempotencyConflictError(TokenplansError):
    """An idempotency key was reused for a different request."""

    def __init__(
        self, key: str, first_amount: int, amount: int, message: str | None = None
    ) -> None:
        super().__init__(
            message
            or f"idempotency key {key!r} was first used for {first_amount} tokens, not {amount}"
        )
        self.key = key
        self.first_amount = first_amount
        self.amount = amount


class HoldNotFoundError(TokenplansError, LookupError):
    """No hold with this id belongs to the subject (another subject's hold is not found
    either: hold ids are scoped to their subject)."""

    def __init__(self, hold_id: str) -> None:
        super().__init__(f"no hold {hold_id!r}")
        self.hold_id = hold_id


class HoldConflictError(TokenplansError):
    """A request the hold's state refuses: settling a released hold, releasing a settled
    one, settling with another amount, reserving its id for another amount. ``hold`` is
    the hold as it is (its final state, when closed); nothing was changed."""

    def __init__(self, hold: HoldSummary, message: str) -> None:
        super().__init__(message)
        self.hold = hold


class DuplicateRequestError(TokenplansError):
    """A request whose hold id or idempotency key names one already made, refused before
    it is performed again (a host endpoint must not call the model twice). ``hold`` or
    ``receipt`` is what the first request left; nothing was changed."""

    def __init__(
        self,
        message: str,
        *,
        hold: HoldSummary | None = None,
        receipt: ReceiptSummary | None = None,
    ) -> None:
        super().__init__(message)
        self.hold = hold
        self.receipt = receipt


class RequestInProgressError(DuplicateRequestError):
    """The first request with this hold id is still in flight: its hold is open (or its
    process died and the hold waits for its expiry). Retry after ``retry_after_seconds``."""

    def __init__(self, hold: HoldSummary, retry_after_seconds: int) -> None:
        super().__init__(f"request {hold.hold_id!r} is in progress", hold=hold)
        self.retry_after_seconds = retry_after_seconds


class AlreadyProcessedError(DuplicateRequestError):
    """The first request with this hold id or idempotency key has finished: its hold is
    closed, or its debit is remembered. Its result is on ``hold`` or ``receipt``."""

    def __init__(
        self, *, hold: HoldSummary | None = None, receipt: ReceiptSummary | None = None
    ) -> None:
        name = hold.hold_id if hold is not None else receipt.idempotency_key if receipt else ""
        super().__init__(f"request {name!r} was already processed", hold=hold, receipt=receipt)


class TooManyHoldsError(TokenplansError):
    """The account already has ``limit`` open holds; settle or release some first."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the account already has {limit} open holds")
        self.limit = limit


class LotNotFoundError(TokenplansError, LookupError):
    """No live lot with this id on the subject's account (the plan lot is never one to
    void)."""

    def __init__(self, lot_id: str) -> None:
        super().__init__(f"no lot {lot_id!r}")
        self.lot_id = lot_id


class LotConflictError(TokenplansError):
    """A grant under a ``lot_id`` already used for another grant (another amount, expiry
    or priority); nothing was changed."""

    def __init__(self, lot_id: str, message: str) -> None:
        super().__init__(message)
        self.lot_id = lot_id


class TooManyLotsError(TokenplansError):
    """The account already has ``limit`` live lots (the plan lot counts); a grant must
    wait until some expire, or be voided."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the account already has {limit} live lots")
        self.limit = limit


class PermissionDeniedError(TokenplansError):
    """The principal may not do this; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class FeatureNotInPlanError(TokenplansError):
    """The account's plan does not list ``feature`` (see docs/quotas.md, "Plan
    features"); ``plan`` is the account's plan id. Raised by a host's guard, such as the
    FastAPI ``require_feature`` dependency; the core's ``check`` answers it as a value."""

    def __init__(self, feature: str, plan: str) -> None:
        super().__init__(f"feature {feature!r} is not in plan {plan!r}")
        self.feature = feature
        self.plan = plan


class PaymentError(TokenplansError):
    """A payment request the rules refuse (wrong plan, unknown order, bad signature...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PaymentNotFoundError(PaymentError):
    """No payment with this order id belongs to the caller."""

    def __init__(self, order_id: str) -> None:
        super().__init__("payment_not_found", f"no payment for order {order_id!r}")
        self.order_id = order_id


class TooManyOrdersError(PaymentError):
    """The subject already has the most open (unpaid, recent) orders allowed; one becomes
    free in ``retry_after_seconds``."""

    def __init__(self, limit: int, retry_after_seconds: int) -> None:
        super().__init__(
            "too_many_open_orders",
            f"{limit} orders are already open: pay one of them, or retry in "
            f"{retry_after_seconds} s",
        )
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds


class GatewayError(TokenplansError):
    """The payment provider could not be reached, or refused the request."""


class StorageUnavailableError(TokenplansError):
    """The store cannot be reached right now; retrying later may succeed."""


class AuthenticationError(TokenplansError):
    """A bearer credential that is missing, malformed, expired or badly signed."""


class WriteConflictError(TokenplansError):
    """Another change committed first (compare-and-write lost); reload and decide again.

    Raised by storage and caught by the services, which retry; their callers see
    :class:`AccountBusyError` only when an account stays contended past the retry budget.
    """


class AccountBusyError(StorageUnavailableError):
    """An account stayed contended through every retry; the request may be retried."""
