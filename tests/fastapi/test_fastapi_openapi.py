"""The host's /openapi.json (and so its /docs) shows tokenplans' routes under the mount."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fastapi_support import build_host
from openapi_spec_validator import validate
from pydantic import BaseModel

from tokenplans import PlanCatalog, TokenService
from tokenplans.testing import InMemoryStore, SettableClock, StaticIdentity
from tokenplans_adapters.fastapi import mount_tokenplans
from tokenplans_adapters.http import create_app

HOST_PATHS = {"/health", "/me", "/ops", "/summarise", "/chat", "/outage"}


def _billing() -> Any:
    service = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())
    return create_app(service, StaticIdentity({}))


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {v for k, v in value.items() if k == "$ref"} | {
            ref for item in value.values() for ref in _refs(item)
        }
    if isinstance(value, list):
        return {ref for item in value for ref in _refs(item)}
    return set()


def test_the_host_document_has_every_billing_path_under_the_prefix_and_its_own() -> None:
    host, _ = build_host()
    client = TestClient(host)
    ours = client.get("/billing/openapi.json").json()

    document = client.get("/openapi.json").json()

    validate(document)
    assert set(document["paths"]) == HOST_PATHS | {"/billing" + p for p in ours["paths"]}
    assert document["paths"]["/billing/api/tokens/consume"]["post"]["security"] == [
        {"TokenplansBearer": []}
    ]
    assert document["components"]["securitySchemes"] == {
        "TokenplansBearer": {"type": "http", "scheme": "bearer"}
    }
    assert document["info"]["title"] == "host app"  # the host's document, extended
    assert client.get("/docs").status_code == 200


def test_components_are_prefixed_and_every_reference_resolves() -> None:
    host, _ = build_host()
    ours = TestClient(host).get("/billing/openapi.json").json()

    document = host.openapi()

    schemas = document["components"]["schemas"]
    assert {"Tokenplans" + name for name in ours["components"]["schemas"]} <= set(schemas)
    assert {"ChatRequest", "HTTPValidationError"} <= set(schemas)  # the host's own stay
    refs = _refs(document["paths"]) | _refs(schemas)
    assert all(ref.removeprefix("#/components/schemas/") in schemas for ref in refs)


def test_host_routes_using_the_dependencies_are_documented_as_bearer_secured() -> None:
    host, _ = build_host()

    paths = host.openapi()["paths"]

    assert paths["/me"]["get"]["security"] == [{"TokenplansBearer": []}]
    assert paths["/chat"]["post"]["security"] == [{"TokenplansBearer": []}]
    assert "security" not in paths["/health"]["get"]


def test_the_merge_happens_once_and_again_for_a_rebuilt_document() -> None:
    host, _ = build_host()
    first = host.openapi()

    again = host.openapi()
    host.openapi_schema = None  # how a FastAPI app asks for a fresh document
    rebuilt = host.openapi()

    assert again is first
    assert rebuilt is not first
    assert rebuilt == first


class TokenplansUsage(BaseModel):
    """A host's own model that happens to have the name ours get in the host's document."""

    mine: int


def test_a_host_schema_with_our_prefixed_name_is_refused_by_name() -> None:
    host = FastAPI()

    @host.post("/mine")
    def mine(body: TokenplansUsage) -> int:
        return body.mine

    mount_tokenplans(host, _billing(), prefix="/billing")

    with pytest.raises(ValueError, match="TokenplansUsage"):
        host.openapi()


def test_another_component_prefix_avoids_the_clash() -> None:
    host = FastAPI()
    mount_tokenplans(host, _billing(), prefix="/pay", component_prefix="Billing")

    document = host.openapi()

    validate(document)
    assert "BillingUsage" in document["components"]["schemas"]
    assert "/pay/api/tokens/usage" in document["paths"]
    assert "BillingBearer" in document["components"]["securitySchemes"]


def test_every_operation_id_in_the_host_document_is_unique_and_ours_are_prefixed() -> None:
    host, _ = build_host()
    ours = TestClient(host).get("/billing/openapi.json").json()["paths"]

    paths = host.openapi()["paths"]

    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in ours.items():
        for method, operation in item.items():
            merged = paths["/billing" + path][method]["operationId"]
            own = operation["operationId"]
            assert merged == "tokenplans" + own[0].upper() + own[1:]
    assert paths["/billing/api/tokens/usage"]["get"]["operationId"] == "tokenplansGetUsage"


def test_a_host_operation_id_equal_to_one_of_ours_is_refused_by_name() -> None:
    host = FastAPI()

    @host.get("/usage", operation_id="tokenplansGetUsage")
    def usage() -> int:
        return 0

    mount_tokenplans(host, _billing(), prefix="/billing")

    with pytest.raises(ValueError, match="operationId 'tokenplansGetUsage'"):
        host.openapi()


def test_another_component_prefix_renames_the_operation_ids_too() -> None:
    host = FastAPI()
    mount_tokenplans(host, _billing(), prefix="/pay", component_prefix="Billing")

    paths = host.openapi()["paths"]

    assert paths["/pay/api/tokens/consume"]["post"]["operationId"] == "billingConsumeTokens"


@pytest.mark.parametrize("prefix", ["", "billing", "/billing/"])
def test_a_malformed_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        mount_tokenplans(FastAPI(), _billing(), prefix=prefix)


def test_an_app_not_made_by_create_app_is_refused() -> None:
    with pytest.raises(TypeError, match="create_app"):
        mount_tokenplans(FastAPI(), FastAPI(), prefix="/billing")
