"""Credentials and small helpers shared by the HTTP tests.

Credentials are plain names (``StaticIdentity``): the app must not care how a bearer
credential is checked, only what principal it proves. ``alice`` and ``bob`` are users,
``root`` is an admin.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from tokenplans import (
    ADMIN_SCOPE,
    AccountStore,
    Clock,
    PaymentService,
    PlanCatalog,
    Pricer,
    Principal,
    TokenService,
)
from tokenplans.testing import InMemoryStore, SettableClock, StaticIdentity
from tokenplans_adapters.http import create_app
from tokenplans_adapters.razorpay import OfflineGateway

#: The secret :func:`build_full_app`'s offline gateway signs payments and webhooks with.
GATEWAY_SECRET = "http-tests-gateway-secret"

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
ROOT = {"Authorization": "Bearer root-token"}


def identity() -> StaticIdentity:
    return StaticIdentity(
        {
            "alice-token": Principal("alice"),
            "bob-token": Principal("bob"),
            "root-token": Principal("root", frozenset({ADMIN_SCOPE})),
        }
    )


def build_app(
    store: AccountStore | None = None, clock: Clock | None = None, **options: Any
) -> Starlette:
    """``create_app`` over a fresh service (in-memory store, settable clock by default)."""
    service = TokenService(
        InMemoryStore() if store is None else store,
        PlanCatalog.default(),
        SettableClock() if clock is None else clock,
    )
    return create_app(service, identity(), **options)


def build_full_app(pricer: Pricer | None = None) -> tuple[Starlette, TokenService]:
    """Every route there is (payments too, over an offline gateway signing with
    :data:`GATEWAY_SECRET`), over a fresh in-memory service, returned beside the app."""
    store, catalog, clock = InMemoryStore(), PlanCatalog.default(), SettableClock()
    service = TokenService(store, catalog, clock, pricer=pricer)
    payments = PaymentService(store, store, catalog, clock, OfflineGateway(GATEWAY_SECRET))
    return create_app(service, identity(), payments=payments), service
