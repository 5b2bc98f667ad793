"""What store, gateway and identity implementers need: the ports, the commit and its
records, the conflict a store raises, and the neutral words a payment gateway speaks.

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
from tokenplans._values.errors import (
    AuthenticationError,
    GatewayError,
    StorageUnavailableError,
    WriteConflictError,
)
from tokenplans._values.holds import Hold, HoldStatus, HoldWrite
from tokenplans._values.ledger import DebitReceipt, LedgerEntry
from tokenplans._values.limits import MAX_GATEWAY_ID_LENGTH, check_gateway_id
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
    "MAX_GATEWAY_ID_LENGTH",
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
    "Payment",
    "PaymentGateway",
    "PaymentStatus",
    "PaymentStore",
    "Record",
    "StorageUnavailableError",
    "WriteConflictError",
    "check_gateway_id",
]
