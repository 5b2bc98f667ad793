"""The attack set at the HTTP edge: every refused credential gets the same 401.

The app is built per test through :func:`tokenplans_adapters.http.create_app` with the real
:class:`JwtIdentity` and the in-memory store, so these tests are about the wiring of
identity into HTTP, not about storage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest
from starlette.testclient import TestClient

from tokenplans import PlanCatalog, TokenService
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.http import create_app
from tokenplans_adapters.jwt_identity import JwtIdentity, mint_token

#: A read, a write and an admin route: every route that needs a principal goes through the
#: same authentication backend (tests/http checks each route refuses a missing credential).
ACCOUNT_ROUTES = [
    ("GET", "/api/tokens/usage"),
    ("POST", "/api/tokens/consume"),
    ("GET", "/api/admin/accounts/alice"),
]


@pytest.fixture
def client(secret: str) -> Iterator[TestClient]:
    service = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())
    app = create_app(service, JwtIdentity(secret=secret), cors_origins=(), base_url="")
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def refusal(client: TestClient) -> tuple[int, bytes, str | None]:
    """What the app answers a request with no credential at all: the model refusal."""
    response = client.get("/api/tokens/usage")
    return response.status_code, response.content, response.headers.get("www-authenticate")


def test_a_request_without_a_credential_is_401_with_a_bearer_challenge(
    refusal: tuple[int, bytes, str | None],
) -> None:
    status, body, challenge = refusal

    assert status == 401
    assert challenge is not None
    assert challenge.startswith("Bearer")
    assert body.startswith(b'{"error":')


@pytest.mark.parametrize(("method", "path"), ACCOUNT_ROUTES)
def test_every_attack_token_is_answered_like_a_missing_credential(
    client: TestClient,
    refusal: tuple[int, bytes, str | None],
    attack: str,
    method: str,
    path: str,
) -> None:
    # Bytes, so the non-ASCII token reaches the server as the raw UTF-8 a client could send.
    header = f"Bearer {attack}".encode()
    response = client.request(method, path, headers={"Authorization": header})

    assert (
        response.status_code,
        response.content,
        response.headers.get("www-authenticate"),
    ) == refusal


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic YWxpY2U6c2VjcmV0",
        "Token abc.def.ghi",
        "bearer-but-not-really abc",
    ],
)
def test_a_malformed_or_non_bearer_authorization_header_is_refused_alike(
    client: TestClient, refusal: tuple[int, bytes, str | None], authorization: str
) -> None:
    response = client.get("/api/tokens/usage", headers={"Authorization": authorization})

    assert (
        response.status_code,
        response.content,
        response.headers.get("www-authenticate"),
    ) == refusal


def test_the_same_token_with_a_good_signature_is_accepted(client: TestClient, secret: str) -> None:
    token = mint_token("alice", secret=secret)

    response = client.get("/api/tokens/usage", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json()["plan"] == "basic"


def test_the_bearer_scheme_is_case_insensitive(client: TestClient, secret: str) -> None:
    token = mint_token("alice", secret=secret)

    response = client.get("/api/tokens/usage", headers={"Authorization": f"bearer {token}"})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"scope": "read\u2003tokenplans:admin"},
        {"scope": "tokenplans:admin\u3000read"},
        {"scopes": ["read\u2003tokenplans:admin"]},
    ],
)
def test_a_scope_split_by_a_unicode_space_is_401_not_an_admin(
    client: TestClient,
    refusal: tuple[int, bytes, str | None],
    secret: str,
    claims: dict[str, object],
) -> None:
    token = jwt.encode({"sub": "mallory", "exp": int(time.time()) + 600, **claims}, secret)

    response = client.get("/api/admin/accounts/alice", headers={"Authorization": f"Bearer {token}"})

    assert (
        response.status_code,
        response.content,
        response.headers.get("www-authenticate"),
    ) == refusal
