"""Fixtures for the payment tests: every store, the offline gateway, and the services.

The SQL stores come from the shared ``engine_for`` fixture (tests/conftest.py; which
databases run is in tests/db_backends.py). Databases are shared with concurrent runs, so
every test uses fresh uuid subjects; nothing is ever dropped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from db_backends import SQL_BACKENDS, backend_param
from payments_support import payment_service

from tokenplans import (
    ADMIN_SCOPE,
    AccountStore,
    PaymentService,
    PlanCatalog,
    Principal,
    TokenService,
)
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.razorpay import OfflineGateway

OFFLINE_SECRET = "offline-test-secret"
BACKENDS = ["memory", *SQL_BACKENDS]


@pytest.fixture(params=[backend_param(b) for b in BACKENDS])
def store(request: pytest.FixtureRequest, engine_for: Callable[[str], Any]) -> AccountStore:
    """Each store in turn: the in-memory reference and the SQL store on every database."""
    if request.param == "memory":
        return InMemoryStore()
    from tokenplans_adapters.sql import SqlAccountStore  # noqa: PLC0415 - SQL tests only

    return SqlAccountStore(engine_for(request.param), clock_source="process")


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def tokens(store: AccountStore, clock: SettableClock) -> TokenService:
    return TokenService(store, PlanCatalog.default(), clock)


@pytest.fixture
def gateway() -> OfflineGateway:
    return OfflineGateway(OFFLINE_SECRET)


@pytest.fixture
def payments(tokens: TokenService, gateway: OfflineGateway) -> PaymentService:
    return payment_service(tokens, gateway)


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def alice() -> Principal:
    return Principal(_unique("alice"))


@pytest.fixture
def bob() -> Principal:
    return Principal(_unique("bob"))


@pytest.fixture
def admin() -> Principal:
    return Principal(_unique("admin"), {ADMIN_SCOPE})
