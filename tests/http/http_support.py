"""Credentials and small helpers shared by the HTTP tests.

Credentials are plain names (``StaticIdentity``): the app must not care how a bearer
credential is checked, only what principal it proves. ``alice`` and ``bob`` are users,
``root`` is an admin.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from tokenplans import ADMIN_SCOPE, AccountStore, Clock, PlanCatalog, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock, StaticIdentity
from tokenplans_adapters.http import create_app

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
