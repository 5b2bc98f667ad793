"""Fixtures for the payment tests: every store, the offline gateway, and the services.

The SQL stores come from ``TOKENPLANS_TEST_POSTGRES_URL`` / ``TOKENPLANS_TEST_MYSQL_URL``
(unset: skipped; set but unreachable: the test fails) and a SQLite file per session.
Databases are shared with concurrent runs, so the schema is upgraded idempotently and
every test uses fresh uuid subjects; nothing is ever dropped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.razorpay import OfflineGateway
from tokenplans import AccountStore, PaymentService, PlanCatalog, Principal, TokenService
from tokenplans.permissions import ADMIN_SCOPE
from tokenplans.testing import InMemoryStore, SettableClock

OFFLINE_SECRET = "offline-test-secret"
URL_VARIABLES = {
    "postgres": "TOKENPLANS_TEST_POSTGRES_URL",
    "mysql": "TOKENPLANS_TEST_MYSQL_URL",
}
BACKENDS = ["memory", "sqlite", "mysql", "postgres"]


def _marks(backend: str) -> list[pytest.MarkDecorator]:
    return [getattr(pytest.mark, backend)] if backend in URL_VARIABLES else []


@pytest.fixture(scope="session")
def engine_for(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Any]]:
    """One engine per SQL backend for the session, its schema upgraded once."""
    from adapters.sql import make_engine, upgrade_schema  # noqa: PLC0415 - SQL tests only

    engines: dict[str, Any] = {}

    def get(backend: str) -> Any:
        if backend not in engines:
            if backend == "sqlite":
                path: Path = tmp_path_factory.mktemp("payments-sqlite") / "tokenplans.db"
                url = f"sqlite:///{path}"
            else:
                url = os.environ.get(URL_VARIABLES[backend], "")
                if not url:
                    pytest.skip(f"{URL_VARIABLES[backend]} is not set")
            engine = make_engine(url)
            upgrade_schema(engine)
            engines[backend] = engine
        return engines[backend]

    yield get
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=[pytest.param(b, marks=_marks(b)) for b in BACKENDS])
def store(request: pytest.FixtureRequest, engine_for: Callable[[str], Any]) -> AccountStore:
    """Each store in turn: the in-memory reference and the SQL store on every database."""
    if request.param == "memory":
        return InMemoryStore()
    from adapters.sql import SqlAccountStore  # noqa: PLC0415 - SQL tests only

    return SqlAccountStore(engine_for(request.param))


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
    return PaymentService(tokens, gateway)


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
