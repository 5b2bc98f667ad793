"""What store, gateway, identity and pricer implementers need: the ports and their
optional capabilities, the commit and its records, the conflict a store raises, the
neutral words a payment gateway speaks, and the exact arithmetic a pricer quotes with.

Library callers need none of this; they use :mod:`tokenplans`. Nothing is defined here:
every name is re-exported from its one definition, so a port implementer finds all it
needs in one import. The values a store reads and writes (``Hold``, ``LedgerEntry``,
``Payment``...), the port protocols and the errors a port raises are the very objects
:mod:`tokenplans` and :mod:`tokenplans.errors` publish, repeated here on purpose.
An optional capability (:class:`RowLockingStore`, :class:`ClockedStore`,
:class:`EventStore`, :class:`BlockingHint`,
:class:`KnowsCredentials`, :class:`SupportsClose`) is a ``runtime_checkable`` protocol:
callers find it with ``isinstance``, never by looking a name up.
"""

from tokenplans._ports import (
    AccountDirectory,
    AccountStore,
    BlockingHint,
    Clock,
    ClockedStore,
    Commit,
    EventStore,
    IdentityProvider,
    KnowsCredentials,
    PaymentGateway,
    PaymentStore,
    RowLockingStore,
    Stamped,
    SupportsClose,
    UsageReports,
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
from tokenplans._values.events import (
    Attempt,
    Backlog,
    Claim,
    Delivery,
    DeliveryStatus,
    Event,
    EventPage,
    EventType,
    WebhookEndpoint,
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
from tokenplans._values.lots import draws_of, lots_from_json, lots_json
from tokenplans._values.model_usage import PricedCall
from tokenplans._values.payments import (
    CheckoutStart,
    Confirmation,
    EventKind,
    GatewayDescription,
    GatewayEvent,
    HandledEvent,
    Payment,
    PaymentStatus,
)
from tokenplans._values.records import Record
from tokenplans._values.reports import DailyUsage, daily_usage
from tokenplans.errors import (
    AuthenticationError,
    GatewayError,
    StorageUnavailableError,
    WriteConflictError,
)
from tokenplans.limits import MAX_GATEWAY_ID_LENGTH, check_gateway_id

__all__ = [
    "FACT_CLASSES",
    "MAX_GATEWAY_ID_LENGTH",
    "MAX_RATE",
    "TOKENS_PER_RATE",
    "AccountDirectory",
    "AccountStore",
    "Attempt",
    "AuthenticationError",
    "Backlog",
    "BlockingHint",
    "CheckoutStart",
    "Claim",
    "Clock",
    "ClockedStore",
    "Commit",
    "Confirmation",
    "DailyUsage",
    "DebitReceipt",
    "Delivery",
    "DeliveryStatus",
    "Event",
    "EventKind",
    "EventPage",
    "EventStore",
    "EventType",
    "GatewayDescription",
    "GatewayError",
    "GatewayEvent",
    "HandledEvent",
    "Hold",
    "HoldStatus",
    "HoldWrite",
    "IdentityProvider",
    "KnowsCredentials",
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
    "RowLockingStore",
    "Stamped",
    "StorageUnavailableError",
    "SupportsClose",
    "UsageReports",
    "WebhookEndpoint",
    "WriteConflictError",
    "check_gateway_id",
    "credits_for",
    "daily_usage",
    "decimal_text",
    "draws_of",
    "estimate_by_pricing",
    "facts_from_json",
    "facts_json",
    "lots_from_json",
    "lots_json",
    "parse_rate",
]
