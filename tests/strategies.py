"""Hypothesis strategies shared by the whole suite, built by construction (no ``filter``).

The core tests and the storage contract suite draw from the same strategies, so an
adapter is exercised with the same awkward instants, amounts and keys as the rules are.
Import as ``from strategies import ...`` (``tests/`` is on ``sys.path`` because its
``conftest.py`` sits there without an ``__init__.py``).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tokenplans import MAX_AMOUNT, MAX_IDEMPOTENCY_KEY_LENGTH, ModelUsage, PlanCatalog, Principal

# --------------------------------------------------------------------------- time

#: Far enough apart to hold decades of idle accounts, close enough to stay fast.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2080, 12, 31, 23, 59, 59, tzinfo=UTC)
_YEARS = st.integers(min_value=2000, max_value=2079)


def _month_end(year: int, month: int) -> datetime:
    """The last second of a calendar month: the instant just before a reset is due."""
    first_of_next = (
        datetime(year + 1, 1, 1, tzinfo=UTC)
        if month == 12
        else datetime(year, month + 1, 1, tzinfo=UTC)
    )
    return first_of_next - timedelta(seconds=1)


#: Month boundaries exactly (midnight on the 1st), and the second before one.
month_starts = st.builds(lambda y, m: datetime(y, m, 1, tzinfo=UTC), _YEARS, st.integers(1, 12))
month_ends = st.builds(_month_end, _YEARS, st.integers(1, 12))
#: Feb 29 of a leap year (any year divisible by 4 in range is a leap year: 2000 is).
leap_days = st.builds(
    lambda y, h, s: datetime(y, 2, 29, h, tzinfo=UTC) + timedelta(seconds=s),
    st.integers(500, 519).map(lambda n: n * 4),
    st.integers(0, 23),
    st.integers(0, 3599),
)
new_years_eves = st.builds(lambda y: datetime(y, 12, 31, 23, 59, 59, tzinfo=UTC), _YEARS)
#: Jan 31: the month end where "one month later" is most often computed wrong.
january_31sts = st.builds(
    lambda y, s: datetime(y, 1, 31, tzinfo=UTC) + timedelta(seconds=s),
    _YEARS,
    st.integers(0, 86_399),
)
any_instants = st.datetimes(
    min_value=EARLIEST.replace(tzinfo=None),
    max_value=LATEST.replace(tzinfo=None),
    timezones=st.just(UTC),
)
#: Aware UTC instants, weighted towards the boundaries the rules care about.
instants = st.one_of(
    any_instants, month_starts, month_ends, leap_days, new_years_eves, january_31sts
)

#: Clock jumps from one second to years; ``exactly_a_year`` is added to the clock's
#: calendar date by the caller (12 calendar months is not a fixed number of seconds).
clock_jumps = st.one_of(
    st.builds(timedelta, seconds=st.integers(1, 120)),
    st.builds(timedelta, hours=st.integers(1, 72)),
    st.builds(timedelta, days=st.integers(1, 45)),
    st.builds(timedelta, days=st.integers(28, 31)),
    st.builds(timedelta, days=st.integers(300, 3700)),
)


def add_months(moment: datetime, months: int) -> datetime:
    """The same wall-clock instant ``months`` calendar months later, clamped to the end
    of a shorter month (Jan 31 + 1 month = Feb 28/29)."""
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    last_day = (_month_end(year, month)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


# --------------------------------------------------------------------------- amounts, keys

#: Debit and grant amounts the rules accept, weighted towards small realistic ones.
amounts = st.one_of(
    st.integers(1, 50),
    st.integers(1, 2_000),
    st.integers(1, 60_000),
    st.integers(1, MAX_AMOUNT),
)
#: Everything ``amount`` must refuse: zero, negatives, bools, too large, not integers.
invalid_amounts = st.one_of(
    st.just(0),
    st.integers(max_value=-1),
    st.booleans(),
    st.integers(min_value=MAX_AMOUNT + 1),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.none(),
)
#: A small pool of keys, so that repeated draws collide and exercise idempotency.
colliding_keys = st.sampled_from(["k-1", "k-2", "k-3", "retry-me"])
idempotency_keys = st.text(
    alphabet=string.ascii_letters + string.digits + "-_:./",
    min_size=1,
    max_size=MAX_IDEMPOTENCY_KEY_LENGTH,
)
subjects = st.one_of(
    st.integers(1, 10**9).map(str),  # the original service's integer user ids, as text
    st.uuids().map(str),
    st.text(min_size=1, max_size=40),
)

# --------------------------------------------------------------------------- plans

_slugs = st.text(alphabet=string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=12)


@st.composite
def catalog_mappings(draw: st.DrawFn, *, max_extra: int = 4) -> dict[str, dict[str, Any]]:
    """A valid ``PLAN_CONFIGS``-shaped mapping: the default plan (free, no term) first, as a
    valid catalog must rank it lowest, then paid plans (term optional) and free plans with
    a term (trials) in any order and with any token counts. Ids are unique by construction
    (a suffix)."""
    extra = draw(st.integers(0, max_extra))
    mapping: dict[str, dict[str, Any]] = {}
    for rank in range(extra + 1):
        plan_id = f"{draw(_slugs)}-{rank}"
        if rank == 0:
            entry: dict[str, Any] = {
                "id": plan_id,
                "name": plan_id.title(),
                "price": 0,
                "tokens": draw(st.integers(0, 5_000)),
                "duration_days": None,
            }
        else:
            # A non-default plan is either priced (term optional) or free with a term.
            priced = draw(st.booleans())
            entry = {
                "id": plan_id,
                "name": plan_id.title(),
                "price": draw(st.integers(1, 100_000)) if priced else 0,
                "tokens": draw(st.integers(0, 100_000)),
                "duration_days": (
                    draw(st.none() | st.integers(1, 400)) if priced else draw(st.integers(1, 400))
                ),
            }
        mapping[plan_id] = entry
    return mapping


#: The reference catalog with a free 14-day trial between basic and standard.
WITH_TRIAL = {
    "basic": {"price": 0, "tokens": 1000, "duration_days": None},
    "trial": {"price": 0, "tokens": 5000, "duration_days": 14},
    "standard": {"price": 2900, "tokens": 10000, "duration_days": 30},
    "premium": {"price": 9900, "tokens": 50000, "duration_days": 30},
}

#: A free trial ranked above a paid plan that has more tokens: stepping down from the
#: trial must not hand out the paid plan's tokens.
TRIAL_ABOVE_PAID = {
    "basic": {"price": 0, "tokens": 1000, "duration_days": None},
    "pro": {"price": 2900, "tokens": 20000, "duration_days": 30},
    "vip-trial": {"price": 0, "tokens": 1000, "duration_days": 7},
}

catalogs = st.one_of(
    st.just(PlanCatalog.default()),
    st.just(PlanCatalog.from_mapping(WITH_TRIAL)),
    catalog_mappings().map(PlanCatalog.from_mapping),
)

# --------------------------------------------------------------------------- principals


def users(subject: str) -> Principal:
    return Principal(subject)


def admin(subject: str = "admin") -> Principal:
    return Principal(subject, frozenset({"tokenplans:admin"}))


# --------------------------------------------------------------------------- operation runs

#: One operation on one account, as plain data (so a failing run prints as Python):
#: ("consume", amount, key | None), ("set_plan", plan index, reset_used),
#: ("grant", amount), ("renew",), ("wait", timedelta).
operations = st.one_of(
    st.tuples(st.just("consume"), st.integers(1, 3_000), st.none() | colliding_keys),
    st.tuples(st.just("set_plan"), st.integers(0, 4), st.booleans()),
    st.tuples(st.just("grant"), st.integers(1, 5_000)),
    st.tuples(st.just("renew")),
    st.tuples(st.just("wait"), clock_jumps),
)
operation_runs = st.lists(operations, max_size=25)


def run_operations(service: Any, clock: Any, subject: str, run: list[tuple[Any, ...]]) -> int:
    """Apply ``run`` to ``subject`` as an admin through ``service`` (a TokenService),
    moving ``clock`` (a SettableClock) on "wait"; refusals the rules make are expected and
    skipped. Returns the sum of the debits that succeeded (replays excluded)."""
    from tokenplans import (  # noqa: PLC0415 - keeps this module cheap to import
        IdempotencyConflictError,
        InsufficientTokensError,
        InvalidRequestError,
    )
    from tokenplans._rules.decisions import Decision  # noqa: PLC0415
    from tokenplans._rules.quota import renew  # noqa: PLC0415

    debited = 0
    plans = list(service.catalog)
    for op in run:
        try:
            if op[0] == "consume":
                receipt = service.consume(admin(), op[1], idempotency_key=op[2], subject=subject)
                debited += 0 if receipt.replayed else receipt.amount
            elif op[0] == "set_plan":
                plan = plans[op[1] % len(plans)]
                service.set_plan(admin(), plan.id, reset_used=op[2], subject=subject)
            elif op[0] == "grant":
                service.grant(admin(), op[1], subject=subject)
            elif op[0] == "renew":

                def decide(account: Any, now: datetime) -> Any:
                    change = renew(account, service.catalog.get(account.plan_id), now)
                    return Decision(change, None)

                update_directly(service, subject, decide)
            else:
                clock.advance(seconds=op[1].total_seconds())
        except (InsufficientTokensError, IdempotencyConflictError, InvalidRequestError):
            pass
    return debited


def update_directly(service: Any, subject: str, decide: Callable[[Any, datetime], Any]) -> Any:
    """Run ``decide`` (account, now -> Decision) through ``service``'s update loop, as the
    services do but with no permission check: how tests commit a change no use case makes
    (a renewal without a payment, say)."""
    from tokenplans._services.loop import AccountUpdater, no_facts  # noqa: PLC0415

    updater = AccountUpdater(service.store, service.catalog, service.clock)
    return updater.update(subject, lambda account, now, _: decide(account, now), no_facts)


# --------------------------------------------------------------------------- pricing

#: Counts small enough that two of them still add up to a valid count.
token_counts = st.one_of(st.integers(0, 5000), st.integers(0, 5 * 10**11))
#: Rates as a price book may write them: ints, decimal strings, floats (read through
#: their decimal text), credits per million tokens.
book_rates = st.one_of(
    st.integers(0, 100_000),
    st.decimals(0, 100_000, places=4).map(str),
    st.sampled_from([0.15, 0.6, 2.5, 1.25, 0.075, 3.0]),
)


def model_usages(model: str = "gpt-4o") -> st.SearchStrategy[ModelUsage]:
    """Usage of ``model`` with any mix of token kinds."""
    return st.builds(
        ModelUsage,
        st.just(model),
        token_counts,
        token_counts,
        token_counts,
        token_counts,
        token_counts,
    )


@st.composite
def price_book_mappings(draw: st.DrawFn) -> dict[str, Any]:
    """A valid book pricing ``gpt-4o`` (some optional rates unset) and a catch-all "*"."""
    entry = {"input": draw(book_rates), "output": draw(book_rates)}
    for optional in ("cache_read", "cache_write", "reasoning"):
        if draw(st.booleans()):
            entry[optional] = draw(book_rates)
    default = {"input": draw(book_rates), "output": draw(book_rates)}
    return {"version": "test", "models": {"gpt-4o": entry, "*": default}}


@st.composite
def calls_within_estimates(draw: st.DrawFn, model: str) -> tuple[int, int, ModelUsage]:
    """``(input_tokens, max_output_tokens, usage)``: a call with that uncached prompt whose
    answer stays within ``max_output_tokens``, split any way into output and reasoning."""
    input_tokens, max_output = draw(token_counts), draw(token_counts)
    answer = draw(st.integers(0, max_output))
    reasoning = draw(st.integers(0, answer))
    usage = ModelUsage(model, input_tokens, answer - reasoning, reasoning_tokens=reasoning)
    return input_tokens, max_output, usage
