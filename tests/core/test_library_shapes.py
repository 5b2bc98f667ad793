"""The library's call shapes: one order of arguments across the services, a settable
clock that takes a timedelta, and ledger messages that spell UTC as every other time does."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest

from tokenplans import CatalogError, PaymentService, PlanCatalog, Principal, TokenService
from tokenplans._rules.quota import renew
from tokenplans.testing import InMemoryStore, SettableClock

ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))


@pytest.fixture
def service() -> TokenService:
    return TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())


def test_every_public_method_takes_the_principal_first_and_the_subject_as_a_keyword() -> None:
    for cls in (TokenService, PaymentService):
        for name, method in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_"):
                continue
            assert method.__doc__, f"{cls.__name__}.{name} has no docstring"
            parameters = inspect.signature(method).parameters
            if "principal" in parameters and "subject" in parameters:
                assert list(parameters)[1] == "principal", name
                assert parameters["subject"].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_the_settable_clock_advances_by_a_timedelta_or_by_keywords() -> None:
    clock = SettableClock(datetime(2026, 1, 15, tzinfo=UTC))

    assert clock.advance(timedelta(days=1)) == datetime(2026, 1, 16, tzinfo=UTC)
    assert clock.advance(hours=12) == datetime(2026, 1, 16, 12, tzinfo=UTC)
    with pytest.raises(TypeError):
        clock.advance(timedelta(days=1), hours=1)
    with pytest.raises(TypeError):
        clock.advance(3)  # type: ignore[arg-type]


def test_a_renewal_message_spells_utc_with_a_z(service: TokenService) -> None:
    service.set_plan(ADMIN, "standard", subject="alice")
    account = service.account("alice")

    change = renew(account, service.catalog.get("standard"), service.clock.now())

    assert change.entries[-1].message == "renewed standard until 2026-03-16T12:00:00Z"


def test_a_catalog_whose_default_plan_does_not_rank_lowest_is_refused() -> None:
    with pytest.raises(CatalogError, match=r"'basic' is the default plan and must rank lowest"):
        PlanCatalog.from_mapping(
            {
                "trial": {"price": 0, "tokens": 1000, "duration_days": 14},
                "basic": {"price": 0, "tokens": 1000},
            }
        )
