"""``check``: for any catalog, run and instant, a check of n credits is allowed exactly
when a consume of n would succeed at that instant, and a check writes nothing."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import admin, catalogs, instants, operation_runs, run_operations, users

from tokenplans import (
    MAX_AMOUNT,
    CatalogError,
    Check,
    CheckReason,
    Estimate,
    InsufficientTokensError,
    InvalidRequestError,
    PermissionDeniedError,
    PlanCatalog,
    PriceBook,
    TokenService,
)
from tokenplans._rules.checks import decide_check
from tokenplans.aio import AsyncTokenService
from tokenplans.testing import InMemoryStore, SettableClock

JAN = datetime(2026, 1, 15, 12, tzinfo=UTC)
FEATURED = PlanCatalog.from_mapping(
    {
        "basic": {"price": 0, "tokens": 1000, "features": ["export"]},
        "pro": {"price": 900, "tokens": 50_000, "features": ["gpt-4o", "export"]},
    }
)


def _service(catalog: PlanCatalog = FEATURED, **options: object) -> TokenService:
    return TokenService(InMemoryStore(), catalog, SettableClock(JAN), **options)  # type: ignore[arg-type]


def _written(service: TokenService, subject: str) -> tuple[object, int]:
    """What the store holds for ``subject``: its snapshot and the length of its ledger."""
    stored = service.store.load(subject)
    return stored, len(service.store.history(subject, before_version=None, limit=200))


@given(
    catalog=catalogs,
    start=instants,
    run=operation_runs,
    holds=st.lists(st.integers(1, 3_000), max_size=4),
    amount=st.one_of(st.integers(1, 6_000), st.integers(1, MAX_AMOUNT)),
)
def test_a_check_allows_exactly_what_a_consume_would_and_writes_nothing(
    catalog: PlanCatalog,
    start: datetime,
    run: list[tuple[object, ...]],
    holds: list[int],
    amount: int,
) -> None:
    clock = SettableClock(start)
    service = TokenService(InMemoryStore(), catalog, clock)
    run_operations(service, clock, "alice", run)
    for held in holds:  # open holds take from what remains, as the consume sees it
        with contextlib.suppress(InsufficientTokensError):
            service.reserve(admin(), held, subject="alice", ttl_seconds=3600)
    before = _written(service, "alice")

    answer = service.check(users("alice"), amount)

    assert _written(service, "alice") == before
    remaining = service.usage(users("alice")).remaining
    try:
        receipt = service.consume(users("alice"), amount)
    except InsufficientTokensError:
        assert not answer.allowed
        assert answer.reason is CheckReason.INSUFFICIENT_CREDITS
        assert answer.remaining == remaining
    else:
        assert answer.allowed
        assert answer.reason is CheckReason.OK
        assert answer.remaining == receipt.usage.remaining + amount
        assert answer.resets_at == receipt.usage.period_end
    assert answer.requested == amount


def test_a_check_for_a_subject_never_seen_creates_no_account() -> None:
    service = _service()

    answer = service.check(users("nobody"), 10)

    assert answer.allowed
    assert (answer.remaining, answer.plan) == (1000, "basic")
    assert answer.resets_at == datetime(2026, 2, 1, tzinfo=UTC)
    assert service.store.load("nobody") is None
    assert service.check(admin(), feature="export", subject="ghost").allowed
    assert service.store.load("ghost") is None


def test_the_boundary_amount_is_allowed_and_one_more_is_not() -> None:
    service = _service()
    service.consume(users("alice"), 400)

    assert service.check(users("alice"), 600).allowed
    refused = service.check(users("alice"), 601)
    assert (refused.allowed, refused.reason, refused.remaining) == (
        False,
        CheckReason.INSUFFICIENT_CREDITS,
        600,
    )


def test_an_estimate_is_priced_as_a_reserve_prices_it() -> None:
    book = PriceBook.from_mapping(
        {"version": "t1", "models": {"gpt-4o": {"input": 1_000_000, "output": 4_000_000}}}
    )
    service = _service(pricer=book)
    estimate = Estimate("gpt-4o", input_tokens=100, max_output_tokens=200)

    answer = service.check(users("alice"), estimate=estimate)
    hold = service.reserve(users("alice"), estimate=estimate)

    assert answer.requested == hold.amount == 900
    assert answer.allowed
    assert not service.check(users("alice"), estimate=Estimate("gpt-4o", 100, 1000)).allowed


def test_features_follow_the_accounts_plan() -> None:
    service = _service()

    assert service.check(users("alice"), feature="export").allowed
    refused = service.check(users("alice"), feature="gpt-4o")
    assert (refused.allowed, refused.reason, refused.requested, refused.plan) == (
        False,
        CheckReason.FEATURE_NOT_IN_PLAN,
        None,
        "basic",
    )

    service.set_plan(admin(), "pro", subject="alice")

    assert service.check(users("alice"), feature="gpt-4o").allowed
    assert not service.check(users("alice"), feature="GPT-4O").allowed  # exact names


def test_a_plan_dropped_from_the_catalog_has_the_default_plans_features() -> None:
    store = InMemoryStore()
    clock = SettableClock(JAN)
    TokenService(store, FEATURED, clock).set_plan(admin(), "pro", subject="alice")
    only_basic = PlanCatalog.from_mapping({"basic": {"price": 0, "tokens": 10, "features": ["x"]}})

    answer = TokenService(store, only_basic, clock).check(users("alice"), feature="x")

    assert answer.allowed
    assert answer.plan == "pro"


@pytest.mark.parametrize(
    ("asked", "error"),
    [
        ({}, "exactly one"),
        ({"amount": 5, "feature": "export"}, "exactly one"),
        ({"amount": 5, "estimate": Estimate("m", 1, 1)}, "exactly one"),
        ({"amount": 0}, "amount must be between"),
        ({"amount": MAX_AMOUNT + 1}, "amount must be between"),
        ({"amount": True}, "amount must be an integer"),
        ({"feature": ""}, "feature must be"),
        ({"feature": "two words"}, "feature must be"),
        ({"feature": "x" * 129}, "feature must be"),
        ({"estimate": Estimate("m", 0, 0)}, "at least 1"),
    ],
)
def test_a_bad_check_is_refused(asked: dict[str, object], error: str) -> None:
    with pytest.raises(InvalidRequestError, match=error):
        _service().check(users("alice"), **asked)  # type: ignore[arg-type]


def test_another_users_account_needs_an_admin() -> None:
    service = _service()

    with pytest.raises(PermissionDeniedError):
        service.check(users("mallory"), 1, subject="alice")
    assert service.check(admin(), 1, subject="alice").allowed


def test_a_command_stands_for_the_arguments() -> None:
    service = _service()

    assert service.check(users("alice"), Check(feature="export")) == service.check(
        users("alice"), feature="export"
    )
    with pytest.raises(InvalidRequestError, match="pass a Check alone"):
        service.check(users("alice"), Check(amount=1), feature="export")


def test_the_async_service_checks_in_a_thread() -> None:
    service = AsyncTokenService(_service())

    answer = asyncio.run(service.check(users("alice"), 5))

    assert answer.allowed
    assert answer.requested == 5


@given(
    remaining_parts=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6)),
    requested=st.integers(1, 3 * 10**6),
)
def test_the_rule_allows_no_more_than_remains(
    remaining_parts: tuple[int, int, int], requested: int
) -> None:
    quota, used, held = remaining_parts
    account = attrs.evolve(
        _service().account("alice"), token_quota=quota, token_used=used, token_held=held
    )

    answer = decide_check(account, (), requested=requested)

    assert answer.allowed == (requested <= account.remaining)
    assert answer.remaining == account.remaining


@pytest.mark.parametrize(
    ("features", "error"),
    [
        ("export", "features must be a list"),
        (["export", "export"], "listed twice"),
        ([""], "a feature is 1 to 128"),
        (["two words"], "a feature is 1 to 128"),
        ([7], "a feature is 1 to 128"),
        (["é"], "a feature is 1 to 128"),
    ],
)
def test_a_catalog_with_bad_features_fails_to_load(features: object, error: str) -> None:
    with pytest.raises(CatalogError, match=error):
        PlanCatalog.from_mapping({"basic": {"price": 0, "tokens": 1, "features": features}})
