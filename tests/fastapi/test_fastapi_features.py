"""``require_feature``: a host route runs only for a caller whose plan lists the feature;
any other caller gets the 403 ``feature not in plan``, and nothing is written.

No ``from __future__ import annotations``: FastAPI reads the route's annotations."""

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from fastapi_support import NOW, SECRET, bearer

from tokenplans import ADMIN_SCOPE, InvalidRequestError, PlanCatalog, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.fastapi import mount_tokenplans
from tokenplans_adapters.http import create_app
from tokenplans_adapters.jwt_identity import JwtIdentity

CATALOG = PlanCatalog.from_mapping(
    {
        "basic": {"price": 0, "tokens": 1000},
        "pro": {"price": 900, "tokens": 50_000, "features": ["gpt-4o", "export"]},
    }
)


def _host() -> tuple[FastAPI, TokenService, list[str]]:
    service = TokenService(InMemoryStore(), CATALOG, SettableClock(NOW))
    host = FastAPI()
    tp = mount_tokenplans(host, create_app(service, JwtIdentity(secret=SECRET)), prefix="/billing")
    ran: list[str] = []

    @host.get("/export")
    async def export(
        principal: Annotated[Principal, Depends(tp.require_feature("export"))],
    ) -> dict[str, str]:
        ran.append(principal.subject)
        return {"exported_for": principal.subject}

    return host, service, ran


def test_a_caller_whose_plan_lists_the_feature_gets_the_route() -> None:
    host, service, ran = _host()
    service.set_plan(Principal("root", frozenset({ADMIN_SCOPE})), "pro", subject="alice")

    answer = TestClient(host).get("/export", headers=bearer("alice"))

    assert (answer.status_code, answer.json()) == (200, {"exported_for": "alice"})
    assert ran == ["alice"]


def test_any_other_caller_gets_the_403_and_the_route_never_runs() -> None:
    host, service, ran = _host()

    answer = TestClient(host).get("/export", headers=bearer("bob"))

    assert (answer.status_code, answer.json()) == (
        403,
        {"error": "feature not in plan", "feature": "export", "plan": "basic"},
    )
    assert ran == []
    assert service.store.load("bob") is None  # a guard writes nothing


def test_no_credential_is_the_401_before_any_plan_is_read() -> None:
    host, _service, ran = _host()

    assert TestClient(host).get("/export").status_code == 401
    assert ran == []


@pytest.mark.parametrize("name", ["", "two words", "x" * 129])
def test_a_feature_name_no_plan_can_list_is_refused_when_the_route_is_declared(
    name: str,
) -> None:
    service = TokenService(InMemoryStore(), CATALOG, SettableClock(NOW))
    tp = mount_tokenplans(FastAPI(), create_app(service, JwtIdentity(secret=SECRET)))

    with pytest.raises(InvalidRequestError, match="feature must be"):
        tp.require_feature(name)
