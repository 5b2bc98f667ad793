"""The limits tokenplans enforces, and the checks a caller or an adapter may reuse: the
core refuses what breaks them with :class:`tokenplans.errors.InvalidRequestError`, and
SQL columns and API schemas are sized from them.

Like ``attrs.validators``, a namespace of its own; :mod:`tokenplans` re-exports the
constants too.
"""

from tokenplans._values.limits import (
    DEFAULT_HOLD_TTL_SECONDS,
    MAX_AMOUNT,
    MAX_FEATURE_LENGTH,
    MAX_GATEWAY_ID_LENGTH,
    MAX_HOLD_ID_LENGTH,
    MAX_HOLD_TTL_SECONDS,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_OPEN_HOLDS,
    MAX_OPEN_ORDERS,
    MAX_PAGE_SIZE,
    MAX_SUBJECT_LENGTH,
    MIN_HOLD_TTL_SECONDS,
    ORDER_REUSE_WINDOW,
    check_feature,
    check_gateway_id,
    check_subject,
    is_storable_text,
)
from tokenplans._values.model_usage import MAX_MODEL_LENGTH, MAX_PRICE_VERSION_LENGTH, MAX_TOKENS

__all__ = [
    "DEFAULT_HOLD_TTL_SECONDS",
    "MAX_AMOUNT",
    "MAX_FEATURE_LENGTH",
    "MAX_GATEWAY_ID_LENGTH",
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
    "check_feature",
    "check_gateway_id",
    "check_subject",
    "is_storable_text",
]
