"""An app with the usage page over in-memory parts, for the portal tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
from starlette.applications import Starlette

from tokenplans import ADMIN_SCOPE, PaymentService, PlanCatalog, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock, StaticIdentity
from tokenplans_adapters.http import create_app
from tokenplans_adapters.portal import Portal, PortalOptions
from tokenplans_adapters.razorpay import OfflineGateway

SECRET = "portal-tests-secret-of-at-least-32-bytes"
START = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
ROOT = {"Authorization": "Bearer root-token"}
#: A product's catalog, in US cents.
CATALOG = PlanCatalog.from_mapping(
    {
        "free": {"name": "Free", "price": 0, "tokens": 50_000, "duration_days": None},
        "pro": {
            "name": "Pro",
            "price": 1900,
            "currency": "USD",
            "tokens": 1_000_000,
            "duration_days": 30,
        },
        "team": {
            "name": "Team",
            "price": 9900,
            "currency": "USD",
            "tokens": 6_000_000,
            "duration_days": 30,
        },
        "packs": {
            "boost": {
                "name": "Boost",
                "price": 500,
                "currency": "USD",
                "credits": 200_000,
                "expires_after_days": 365,
            }
        },
    }
)


def identity(**more: Principal) -> StaticIdentity:
    return StaticIdentity(
        {
            "alice-token": Principal("alice"),
            "bob-token": Principal("bob"),
            "root-token": Principal("root", frozenset({ADMIN_SCOPE})),
            **more,
        }
    )


@attrs.define
class Built:
    app: Starlette
    service: TokenService
    clock: SettableClock
    store: Any
    gateway: OfflineGateway
    portal: Portal


def build(
    *,
    offline_payments: bool = True,
    store: Any = None,
    users: dict[str, Principal] | None = None,
    **options: Any,
) -> Built:
    """The app with the page over ``store`` (default: in memory), its clock at
    :data:`START`; ``users`` adds bearer tokens."""
    clock = SettableClock(START)
    store = InMemoryStore() if store is None else store
    service = TokenService(store, CATALOG, clock)
    gateway = OfflineGateway("portal-tests-gateway-secret")
    payments = PaymentService(store, store, CATALOG, clock, gateway)

    def payer(order_id: str) -> dict[str, str]:
        return gateway.checkout_proof(order_id, gateway.new_payment_id())

    portal = Portal(
        service,
        PortalOptions(SECRET, offline_payer=payer if offline_payments else None, **options),
        payments=payments,
    )
    app = create_app(
        service,
        identity(**(users or {})),
        payments=payments,
        extra_routes=portal.routes(),
        extra_openapi_paths=portal.openapi_paths(),
    )
    return Built(app, service, clock, store, gateway, portal)
