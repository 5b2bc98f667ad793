"""Who may do what (docs/quotas.md: "Who may do what"), through the use cases an adapter calls."""

from __future__ import annotations

import pytest

from tokenplans import PermissionDeniedError, PlanCatalog, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock

ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))
ALICE = Principal("alice", frozenset({"profile"}))
MALLORY = Principal("mallory")


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def service(store: InMemoryStore) -> TokenService:
    return TokenService(store, PlanCatalog.default(), SettableClock())


def refusal(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(PermissionDeniedError) as denied:
        call(*args, **kwargs)  # type: ignore[operator]
    return denied.value.reason


def test_a_user_reads_and_changes_only_its_own_account(
    service: TokenService, store: InMemoryStore
) -> None:
    service.consume(ALICE, 10)
    before = store.load("alice")

    assert refusal(service.usage, MALLORY, subject="alice") == "not_yours"
    assert refusal(service.history, MALLORY, subject="alice") == "not_yours"
    assert refusal(service.consume, MALLORY, 5, subject="alice") == "not_yours"
    assert refusal(service.set_plan, MALLORY, "basic", subject="alice") == "not_yours"
    assert store.load("alice") == before
    assert service.usage(ALICE).token_used == 10


def test_a_user_cannot_upgrade_itself_to_a_paid_plan(
    service: TokenService, store: InMemoryStore
) -> None:
    assert refusal(service.set_plan, ALICE, "standard") == "payment_required"
    assert refusal(service.set_plan, ALICE, "premium") == "payment_required"

    assert store.load("alice") is None


def test_a_user_may_downgrade_or_confirm_its_own_plan(service: TokenService) -> None:
    service.set_plan(ADMIN, "premium", subject="alice")

    assert service.set_plan(ALICE, "premium").message == "plan confirmed"
    assert service.set_plan(ALICE, "standard").message == "downgraded to standard"
    assert service.set_plan(ALICE, "basic").message == "downgraded to basic"


def test_reset_used_is_an_admins_tool(service: TokenService, store: InMemoryStore) -> None:
    service.consume(ALICE, 900)

    assert refusal(service.set_plan, ALICE, "basic", reset_used=True) == "admin_only"
    assert service.usage(ALICE).token_used == 900

    usage = service.set_plan(ADMIN, "basic", subject="alice", reset_used=True).usage
    assert usage.token_used == 0


def test_only_an_admin_grants(service: TokenService, store: InMemoryStore) -> None:
    assert refusal(service.grant, ALICE, 100, subject="alice") == "admin_only"
    assert store.load("alice") is None

    assert service.grant(ADMIN, 100, subject="alice").token_quota == 1100


def test_an_admin_acts_on_any_subject(service: TokenService) -> None:
    service.set_plan(ADMIN, "premium", subject="bob")
    service.consume(ADMIN, 70, subject="bob")
    service.grant(ADMIN, 30, subject="bob")

    usage = service.usage(ADMIN, subject="bob")
    assert (usage.plan, usage.token_quota, usage.token_used) == ("premium", 51030, 70)
    assert len(service.history(ADMIN, subject="bob").entries) == 4
    assert service.usage(Principal("bob")) == usage
