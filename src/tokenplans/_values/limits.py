"""The limits every layer and adapter shares, defined once: the core checks them, SQL
columns and API schemas are sized from them."""

from __future__ import annotations

from datetime import timedelta

from tokenplans.errors import InvalidRequestError

#: The largest single debit or grant: far above any real model call, far below overflow
#: of the 64-bit integer columns SQL stores use.
MAX_AMOUNT = 10**12
#: Idempotency keys fit an indexed VARCHAR(255) on every supported database.
MAX_IDEMPOTENCY_KEY_LENGTH = 255
#: Subjects fit the same indexed VARCHAR(255).
MAX_SUBJECT_LENGTH = 255
#: Provider ids (orders, payments, webhook events) fit an indexed VARCHAR(100) everywhere.
MAX_GATEWAY_ID_LENGTH = 100
#: Hold ids are caller-chosen like idempotency keys, and fit the same indexed VARCHAR(255).
MAX_HOLD_ID_LENGTH = 255
#: How long a hold may stay open: one second to a day, five minutes unless asked.
MIN_HOLD_TTL_SECONDS = 1
MAX_HOLD_TTL_SECONDS = 24 * 60 * 60
DEFAULT_HOLD_TTL_SECONDS = 300
#: Open holds per account: enough for any fan-out of concurrent calls, and a bound on
#: what every change of the account reads.
MAX_OPEN_HOLDS = 1000
#: The largest history page.
MAX_PAGE_SIZE = 200
#: A history cursor is a ledger version, which fits a signed 64-bit column.
MAX_CURSOR_DIGITS = 18
#: An unpaid order stays open this long: asked for the same plan again meanwhile, the
#: subject is given the same order back instead of a new one at the gateway.
ORDER_REUSE_WINDOW = timedelta(hours=1)
#: At most this many open orders per subject (for different plans, or made by racing
#: requests); beyond, :class:`TooManyOrdersError` until the oldest one leaves the window.
MAX_OPEN_ORDERS = 5
#: A plan feature's name ("gpt-4o", "export", "openai/gpt-4.1"): printable ASCII without
#: spaces, long enough for any model id a feature may be named after.
MAX_FEATURE_LENGTH = 128


def check_amount(amount: object) -> int:
    """``amount`` as a token count in ``1..MAX_AMOUNT``, or :class:`InvalidRequestError`."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequestError(f"amount must be an integer, got {amount!r}")
    if not 1 <= amount <= MAX_AMOUNT:
        raise InvalidRequestError(f"amount must be between 1 and {MAX_AMOUNT}, got {amount}")
    return amount


def check_settle_amount(amount: object) -> int:
    """A settled amount: ``0..MAX_AMOUNT`` (a call may have used nothing)."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequestError(f"amount must be an integer, got {amount!r}")
    if not 0 <= amount <= MAX_AMOUNT:
        raise InvalidRequestError(f"amount must be between 0 and {MAX_AMOUNT}, got {amount}")
    return amount


def check_ttl(ttl_seconds: object) -> int:
    """A hold's time to live in whole seconds, ``1..86400``."""
    if (
        isinstance(ttl_seconds, bool)
        or not isinstance(ttl_seconds, int)
        or not MIN_HOLD_TTL_SECONDS <= ttl_seconds <= MAX_HOLD_TTL_SECONDS
    ):
        raise InvalidRequestError(
            f"ttl_seconds must be an integer from {MIN_HOLD_TTL_SECONDS} to "
            f"{MAX_HOLD_TTL_SECONDS}, got {ttl_seconds!r}"
        )
    return ttl_seconds


def check_hold_id(hold_id: object) -> str:
    """A hold id: 1..255 storable characters."""
    if (
        not isinstance(hold_id, str)
        or not 1 <= len(hold_id) <= MAX_HOLD_ID_LENGTH
        or not is_storable_text(hold_id)
    ):
        raise InvalidRequestError(
            f"hold_id must be 1 to {MAX_HOLD_ID_LENGTH} characters, without NUL or lone surrogates"
        )
    return hold_id


def is_storable_text(text: str) -> bool:
    """Whether every store can keep ``text`` exactly: no NUL (PostgreSQL refuses it in
    text) and no lone surrogate (it has no UTF-8 encoding), whatever JSON decoding let in.
    """
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_subject(subject: object) -> str:
    """A subject is 1..255 storable characters (a JWT ``sub``, or a user id as text)."""
    if (
        not isinstance(subject, str)
        or not 1 <= len(subject) <= MAX_SUBJECT_LENGTH
        or not is_storable_text(subject)
    ):
        raise InvalidRequestError(
            f"subject must be 1 to {MAX_SUBJECT_LENGTH} characters, without NUL or lone surrogates"
        )
    return subject


def check_idempotency_key(key: object) -> str | None:
    """``key`` if it is ``None`` or 1..255 storable characters, else
    :class:`InvalidRequestError`."""
    if key is None:
        return None
    if (
        not isinstance(key, str)
        or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH
        or not is_storable_text(key)
    ):
        raise InvalidRequestError(
            f"idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters, "
            "without NUL or lone surrogates"
        )
    return key


def check_gateway_id(name: str, value: object) -> str:
    """A provider id as 1..100 printable ASCII characters, or :class:`InvalidRequestError`
    naming the field (``name``) it came from."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_GATEWAY_ID_LENGTH
        or not value.isascii()
        or not value.isprintable()
    ):
        raise InvalidRequestError(
            f"{name} must be 1 to {MAX_GATEWAY_ID_LENGTH} printable ASCII characters"
        )
    return value


def check_cursor(cursor: object) -> int | None:
    """A history cursor (a ledger version as decimal text) as an int, or ``None``."""
    if cursor is None:
        return None
    if not (isinstance(cursor, str) and cursor.isdecimal() and len(cursor) <= MAX_CURSOR_DIGITS):
        raise InvalidRequestError(f"invalid cursor {cursor!r}")
    return int(cursor)


def check_page_size(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    return limit


def is_feature_name(name: object) -> bool:
    """Whether ``name`` may name a plan feature: 1 to :data:`MAX_FEATURE_LENGTH`
    printable ASCII characters, no spaces."""
    return (
        isinstance(name, str)
        and 1 <= len(name) <= MAX_FEATURE_LENGTH
        and name.isascii()
        and all("!" <= ch <= "~" for ch in name)
    )


def check_feature(name: object) -> str:
    """A feature asked about: a feature name (see :func:`is_feature_name`)."""
    if not is_feature_name(name):
        raise InvalidRequestError(
            f"feature must be 1 to {MAX_FEATURE_LENGTH} printable ASCII characters "
            f"without spaces, got {name!r}"
        )
    return name  # type: ignore[return-value]  # is_feature_name checked it is a str
