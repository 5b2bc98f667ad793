"""tokenplans: subscription plans and per-user token quotas, correct under concurrency.

The core: plans, accounts, the quota ledger and its rules, the use cases, and the ports
they need. It imports the standard library and attrs only; the adapters package puts it
on SQL databases, the web, JWT and Razorpay.
"""

from tokenplans.accounts import Account, Usage
from tokenplans.clocks import SystemClock
from tokenplans.errors import (
    AccountBusyError,
    AuthenticationError,
    CatalogError,
    GatewayError,
    IdempotencyConflictError,
    InsufficientTokensError,
    InvalidRequestError,
    PaymentError,
    PaymentNotFoundError,
    PermissionDeniedError,
    StorageUnavailableError,
    TokenplansError,
    TooManyOrdersError,
    UnknownPlanError,
    WriteConflictError,
)
from tokenplans.ledger import Change, DebitReceipt, EntryKind, LedgerEntry, fold
from tokenplans.payments import (
    Checkout,
    Payment,
    PaymentOutcome,
    PaymentService,
    PaymentStatus,
    WebhookOutcome,
    WebhookStatus,
)
from tokenplans.permissions import ADMIN_SCOPE, Principal
from tokenplans.plans import REFERENCE_PLAN_CONFIGS, Plan, PlanCatalog
from tokenplans.ports import AccountStore, Clock, Commit, IdentityProvider, PaymentGateway
from tokenplans.service import Decision, HistoryPage, PlanChange, TokenService

__all__ = [
    "ADMIN_SCOPE",
    "REFERENCE_PLAN_CONFIGS",
    "Account",
    "AccountBusyError",
    "AccountStore",
    "AuthenticationError",
    "CatalogError",
    "Change",
    "Checkout",
    "Clock",
    "Commit",
    "DebitReceipt",
    "Decision",
    "EntryKind",
    "GatewayError",
    "HistoryPage",
    "IdempotencyConflictError",
    "IdentityProvider",
    "InsufficientTokensError",
    "InvalidRequestError",
    "LedgerEntry",
    "Payment",
    "PaymentError",
    "PaymentGateway",
    "PaymentNotFoundError",
    "PaymentOutcome",
    "PaymentService",
    "PaymentStatus",
    "PermissionDeniedError",
    "Plan",
    "PlanCatalog",
    "PlanChange",
    "Principal",
    "StorageUnavailableError",
    "SystemClock",
    "TokenService",
    "TokenplansError",
    "TooManyOrdersError",
    "UnknownPlanError",
    "Usage",
    "WebhookOutcome",
    "WebhookStatus",
    "WriteConflictError",
    "fold",
]
