"""HTTP tests build a fresh app per test through ``create_app``, with in-memory ports
(a store, a settable clock and the static identity of ``http_support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from http_support import identity
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tokenplans import PlanCatalog, TokenService
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.http import create_app


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def service(store: InMemoryStore, clock: SettableClock) -> TokenService:
    return TokenService(store, PlanCatalog.default(), clock)


@pytest.fixture
def make_app(service: TokenService) -> Callable[..., Starlette]:
    """``create_app`` over this test's service, taking any of its options."""

    def make(**options: Any) -> Starlette:
        return create_app(service, identity(), **options)

    return make


@pytest.fixture
def app(make_app: Callable[..., Starlette]) -> Starlette:
    return make_app()


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    # Server errors come back as the app's JSON 500, as a real server would send them.
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
