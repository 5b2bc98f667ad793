"""What store, gateway, identity and pricer implementers need: the ports, the commit and
its records, the conflict a store raises, the neutral words a payment gateway speaks, and
the exact arithmetic a pricer quotes with.

Library callers need none of this; they use :mod:`tokenplans`.
"""

from tokenplans._ports import (
    AccountStore,
    Clock,
    Commit,
    IdentityProvider,
    PaymentGateway,
    PaymentStore,
)
from tokenplans._pricing.quotes import (
    MAX_RATE,
    TOKENS_PER_RATE,
    Pricer,
    Quote,
    Rates,
    credits_for,
    decimal_text,
    estimate_by_pricing,
    parse_rate,
)
from tokenplans._values.errors import (
    AuthenticationError,
    GatewayError,
    StorageUnavailableError,
    WriteConflictError,
)
from tokenplans._values.expiring import Outstanding
from tokenplans._values.holds import Hold, HoldStatus, HoldWrite
from tokenplans._values.ledger import (
    FACT_CLASSES,
    DebitReceipt,
    LedgerEntry,
    facts_from_json,
    facts_json,
)
from tokenplans._values.limits import MAX_GATEWAY_ID_LENGTH, check_gateway_id
from tokenplans._values.model_usage import PricedCall
from tokenplans._values.payments import (
    CheckoutStart,
    Confirmation,
    EventKind,
    GatewayEvent,
    HandledEvent,
    Payment,
    PaymentStatus,
)
from tokenplans._values.records import Record

__all__ = [
    "FACT_CLASSES",
    "MAX_GATEWAY_ID_LENGTH",
    "MAX_RATE",
    "TOKENS_PER_RATE",
    "AccountStore",
    "AuthenticationError",
    "CheckoutStart",
    "Clock",
    "Commit",
    "Confirmation",
    "DebitReceipt",
    "EventKind",
    "GatewayError",
    "GatewayEvent",
    "HandledEvent",
    "Hold",
    "HoldStatus",
    "HoldWrite",
    "IdentityProvider",
    "LedgerEntry",
    "Outstanding",
    "Payment",
    "PaymentGateway",
    "PaymentStatus",
    "PaymentStore",
    "PricedCall",
    "Pricer",
    "Quote",
    "Rates",
    "Record",
    "StorageUnavailableError",
    "WriteConflictError",
    "check_gateway_id",
    "credits_for",
    "decimal_text",
    "estimate_by_pricing",
    "facts_from_json",
    "facts_json",
    "parse_rate",
]
