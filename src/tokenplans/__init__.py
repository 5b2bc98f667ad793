"""tokenplans: subscription plans and per-user token quotas, correct under concurrency.

The core: plans, accounts, the quota ledger and its rules, the use cases, the pricing of
model calls, and the ports they need. It imports the standard library and attrs only;
the adapters put it on SQL databases, the web, JWT and Razorpay.

This module is the library's API. Every error is defined in :mod:`tokenplans.errors`
(an import-free leaf) and every limit in :mod:`tokenplans.limits`; both are re-exported
here. Store and gateway implementers find the ports, their optional capabilities and the
commit in :mod:`tokenplans.ports`; tests find in-memory ports in
:mod:`tokenplans.testing`. Every other module (``tokenplans._*``) is private.
"""

from tokenplans._ports import AccountStore, Clock, IdentityProvider, PaymentGateway, PaymentStore
from tokenplans._pricing.book import DEFAULT_MODEL, PriceBook
from tokenplans._pricing.quotes import UNIT_PRICE_VERSION, Pricer, Quote, Rates, UnitPricer
from tokenplans._services.clock import SystemClock
from tokenplans._services.payments import PaymentService
from tokenplans._services.tokens import Reservation, TokenService
from tokenplans._values.accounts import Account, Usage
from tokenplans._values.commands import Consume, Grant, Reserve, ReserveOptions, SetPlan, Settle
from tokenplans._values.events import DEFAULT_THRESHOLDS, Event, EventPage, EventType
from tokenplans._values.holds import Hold, HoldKey, HoldStatus
from tokenplans._values.ledger import (
    DebitFacts,
    DebitReceipt,
    EntryFacts,
    EntryKind,
    HoldFacts,
    LedgerEntry,
    PaymentFacts,
    fold,
)
from tokenplans._values.model_usage import (
    MAX_MODEL_LENGTH,
    MAX_PRICE_VERSION_LENGTH,
    MAX_TOKENS,
    TOKEN_KINDS,
    Estimate,
    ModelUsage,
    PricedCall,
)
from tokenplans._values.payments import (
    Checkout,
    Payment,
    PaymentOutcome,
    PaymentStatus,
    WebhookOutcome,
    WebhookStatus,
)
from tokenplans._values.plans import REFERENCE_PLAN_CONFIGS, Plan, PlanCatalog
from tokenplans._values.principal import ADMIN_SCOPE, Principal
from tokenplans._values.results import HistoryPage, PlanChange
from tokenplans.errors import (
    AccountBusyError,
    AlreadyProcessedError,
    AuthenticationError,
    CatalogError,
    DuplicateRequestError,
    GatewayError,
    HoldConflictError,
    HoldNotFoundError,
    IdempotencyConflictError,
    InsufficientTokensError,
    InvalidRequestError,
    PaymentError,
    PaymentNotFoundError,
    PermissionDeniedError,
    PriceBookError,
    RequestInProgressError,
    StorageUnavailableError,
    TokenplansError,
    TooManyHoldsError,
    TooManyOrdersError,
    UnknownModelError,
    UnknownPlanError,
)
from tokenplans.limits import (
    DEFAULT_HOLD_TTL_SECONDS,
    MAX_AMOUNT,
    MAX_HOLD_ID_LENGTH,
    MAX_HOLD_TTL_SECONDS,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_OPEN_HOLDS,
    MAX_OPEN_ORDERS,
    MAX_PAGE_SIZE,
    MAX_SUBJECT_LENGTH,
    MIN_HOLD_TTL_SECONDS,
    ORDER_REUSE_WINDOW,
    check_subject,
    is_storable_text,
)

__all__ = [
    "ADMIN_SCOPE",
    "DEFAULT_HOLD_TTL_SECONDS",
    "DEFAULT_MODEL",
    "DEFAULT_THRESHOLDS",
    "MAX_AMOUNT",
    "MAX_HOLD_ID_LENGTH",
    "MAX_HOLD_TTL_SECONDS",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_MODEL_LENGTH",
    "MAX_OPEN_HOLDS",
    "MAX_OPEN_ORDERS",
    "MAX_PAGE_SIZE",
    "MAX_PRICE_VERSION_LENGTH",
    "MAX_SUBJECT_LENGTH",
    "MAX_TOKENS",
    "MIN_HOLD_TTL_SECONDS",
    "ORDER_REUSE_WINDOW",
    "REFERENCE_PLAN_CONFIGS",
    "TOKEN_KINDS",
    "UNIT_PRICE_VERSION",
    "Account",
    "AccountBusyError",
    "AccountStore",
    "AlreadyProcessedError",
    "AuthenticationError",
    "CatalogError",
    "Checkout",
    "Clock",
    "Consume",
    "DebitFacts",
    "DebitReceipt",
    "DuplicateRequestError",
    "EntryFacts",
    "EntryKind",
    "Estimate",
    "Event",
    "EventPage",
    "EventType",
    "GatewayError",
    "Grant",
    "HistoryPage",
    "Hold",
    "HoldConflictError",
    "HoldFacts",
    "HoldKey",
    "HoldNotFoundError",
    "HoldStatus",
    "IdempotencyConflictError",
    "IdentityProvider",
    "InsufficientTokensError",
    "InvalidRequestError",
    "LedgerEntry",
    "ModelUsage",
    "Payment",
    "PaymentError",
    "PaymentFacts",
    "PaymentGateway",
    "PaymentNotFoundError",
    "PaymentOutcome",
    "PaymentService",
    "PaymentStatus",
    "PaymentStore",
    "PermissionDeniedError",
    "Plan",
    "PlanCatalog",
    "PlanChange",
    "PriceBook",
    "PriceBookError",
    "PricedCall",
    "Pricer",
    "Principal",
    "Quote",
    "Rates",
    "RequestInProgressError",
    "Reservation",
    "Reserve",
    "ReserveOptions",
    "SetPlan",
    "Settle",
    "StorageUnavailableError",
    "SystemClock",
    "TokenService",
    "TokenplansError",
    "TooManyHoldsError",
    "TooManyOrdersError",
    "UnitPricer",
    "UnknownModelError",
    "UnknownPlanError",
    "Usage",
    "WebhookOutcome",
    "WebhookStatus",
    "check_subject",
    "fold",
    "is_storable_text",
]
