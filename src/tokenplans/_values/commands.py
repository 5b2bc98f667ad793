"""What a caller asks the token service to do, one value per request: the options of a
request are declared once, here, and every way in forwards the value.

``TokenService`` builds these from its keyword arguments (or takes one as it is), the
``holding`` blocks and the FastAPI dependencies pass a :class:`Reserve` on, and the HTTP
API parses each body straight into one (its JSON Schema and its field checks come from
these fields). A new reserve option is a field of :class:`Reserve` and a key of
:class:`ReserveOptions` here, plus the rule that uses it.

They only carry what was asked: the service checks every field (:mod:`.limits`), in the
order it always has, so a request that is refused is refused with the same words
whichever way it came.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict, TypeVar

import attrs

from tokenplans.errors import InvalidRequestError

from .described import described
from .limits import (
    DEFAULT_HOLD_TTL_SECONDS,
    MAX_AMOUNT,
    MAX_FEATURE_LENGTH,
    MAX_HOLD_ID_LENGTH,
    MAX_HOLD_TTL_SECONDS,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MIN_HOLD_TTL_SECONDS,
)
from .lots import MAX_LOT_ID_LENGTH, MAX_PRIORITY
from .model_usage import Estimate, ModelUsage

_AMOUNT = described(minimum=1, maximum=MAX_AMOUNT)


def _idempotency_key(what: str) -> Any:
    """The optional ``idempotency_key`` field of a command a client may retry."""
    return attrs.field(
        default=None,
        metadata=described(
            f"Yours, unique per subject and caller (e.g. a UUID): a retry with the same key "
            f"{what} once.",
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        ),
    )


@attrs.frozen
class Reserve:
    """Hold ``amount`` credits, or the most an ``estimate`` of a model call can cost
    (exactly one of the two), under ``hold_id`` (yours, or generated), for
    ``ttl_seconds``."""

    amount: int | None = attrs.field(default=None, metadata=_AMOUNT)
    estimate: Estimate | None = None
    hold_id: str | None = attrs.field(
        default=None,
        metadata=described(
            "Yours, unique per subject and caller (use an unguessable one, e.g. a UUID); "
            "generated when omitted.",
            min_length=1,
            max_length=MAX_HOLD_ID_LENGTH,
        ),
    )
    ttl_seconds: int = attrs.field(
        default=DEFAULT_HOLD_TTL_SECONDS,
        metadata=described(
            f"How long it holds; {DEFAULT_HOLD_TTL_SECONDS} when omitted.",
            minimum=MIN_HOLD_TTL_SECONDS,
            maximum=MAX_HOLD_TTL_SECONDS,
        ),
    )


class ReserveOptions(TypedDict, total=False):
    """The keyword options of a reserve besides what it holds (``amount`` or ``estimate``)
    and its ``hold_id``: every field of :class:`Reserve` after those three, which the
    service's ``reserve`` and ``holding`` and the FastAPI ``hold`` take as keywords and
    forward (a test checks the two lists agree)."""

    ttl_seconds: int


@attrs.frozen
class Settle:
    """Close a hold with the ``amount`` actually used, or what a call's ``usage`` costs
    (exactly one of the two; 0 or more, even above the hold)."""

    amount: int | None = attrs.field(
        default=None, metadata=described(minimum=0, maximum=MAX_AMOUNT)
    )
    usage: ModelUsage | None = None


@attrs.frozen
class Consume:
    """Debit ``amount`` credits, or what a call's ``usage`` costs (exactly one of the
    two); a retry with the same ``idempotency_key`` debits once."""

    amount: int | None = attrs.field(default=None, metadata=_AMOUNT)
    usage: ModelUsage | None = None
    idempotency_key: str | None = attrs.field(
        default=None, metadata=described(min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH)
    )


@attrs.frozen
class SetPlan:
    """Move an account to ``plan``; ``reset_used`` (admins only) also zeroes its usage. A
    retry with the same ``idempotency_key`` changes the plan once."""

    plan: str
    reset_used: bool = attrs.field(
        default=False, metadata=described("Admins only: also set used tokens to 0.")
    )
    idempotency_key: str | None = _idempotency_key("changes the plan")


@attrs.frozen
class Grant:
    """Add ``amount`` tokens to an account's current period (admins only); a retry with
    the same ``idempotency_key`` grants once."""

    amount: int = attrs.field(metadata=_AMOUNT)
    idempotency_key: str | None = _idempotency_key("grants")
    expires: str | None = attrs.field(
        default=None,
        metadata=described(
            'When the granted credits lapse: "period" (the end of the current period), '
            '"never", or an ISO 8601 instant in the future. With expires, priority or '
            "lot_id the grant is a promotional lot of its own, which plan changes and "
            "resets never touch; without any, the plan lot grows for this period.",
            min_length=1,
            max_length=64,
        ),
    )
    priority: int | None = attrs.field(
        default=None,
        metadata=described(
            "The lot's priority, 0 (the default) to 1000: lower burns first.",
            maximum=MAX_PRIORITY,
        ),
    )
    lot_id: str | None = attrs.field(
        default=None,
        metadata=described(
            "Yours (letters, digits, '-', '_', '.'), unique per subject: the same grant "
            "again changes nothing; another grant under it is a conflict.",
            min_length=1,
            max_length=MAX_LOT_ID_LENGTH,
        ),
    )

    @property
    def makes_lot(self) -> bool:
        """Whether the grant is a lot of its own (any of its lot fields given)."""
        return (self.expires, self.priority, self.lot_id) != (None, None, None)


Command = TypeVar("Command")


def command_of(kind: type[Command], first: object, **fields: Any) -> Command:
    """``first`` when it is already a ``kind`` (then every other field must be left out),
    else the ``kind`` made of ``first`` and ``fields``: the one step by which a method
    that takes a command or its fields as arguments gets its command."""
    if isinstance(first, kind):
        given = sorted(name for name, value in fields.items() if value not in (None, False))
        if given:
            raise InvalidRequestError(
                f"pass a {kind.__name__} alone or its fields, not both (got {', '.join(given)})"
            )
        return first
    make: Callable[..., Command] = kind
    return make(first, **fields)


@attrs.frozen
class Check:
    """Ask, writing nothing, whether a debit of ``amount`` credits, a reserve of what an
    ``estimate`` can cost, or a ``feature`` is allowed now (exactly one of the three)."""

    amount: int | None = attrs.field(default=None, metadata=_AMOUNT)
    estimate: Estimate | None = None
    feature: str | None = attrs.field(
        default=None,
        metadata=described(
            "A feature the account's plan must list.",
            min_length=1,
            max_length=MAX_FEATURE_LENGTH,
        ),
    )
