"""Every subject a user can have is addressable by an admin: the subject's path segment
is percent-decoded exactly once from the raw path, so ``a/b`` is ``a%2Fb`` and ``%`` is
``%25``, while a literal ``/`` still separates segments."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from http_support import ROOT
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from tokenplans import ADMIN_SCOPE, PlanCatalog, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock, StaticIdentity
from tokenplans_adapters.http import create_app

SUBJECTS = [
    "a/b",
    "/leading",
    "trailing/",
    "a//b",
    "%",
    "%2F",
    "100%25",
    "with space",
    " ",
    "ünïcødé/ユーザー",
    "a?b#c",
    "..",
    "a;b=c",
    "alice/ledger",
    "+plus+",
]


def _client(subject: str, *, mount: str = "") -> TestClient:
    identity = StaticIdentity(
        {"user-token": Principal(subject), "root-token": Principal("root", {ADMIN_SCOPE})}
    )
    service = TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())
    app = create_app(service, identity)
    host = Starlette(routes=[Mount(mount, app=app)]) if mount else app
    return TestClient(host, base_url="http://testserver" + mount)


def _admin_path(subject: str, action: str = "") -> str:
    # Dots too: clients and proxies resolve a literal ``..`` segment before sending.
    segment = quote(subject, safe="").replace(".", "%2E")
    return f"/api/admin/accounts/{segment}" + (f"/{action}" if action else "")


@pytest.mark.parametrize("mount", ["", "/billing"], ids=["standalone", "mounted"])
@pytest.mark.parametrize("subject", SUBJECTS)
def test_an_admin_reaches_the_account_of_any_subject_on_every_route(
    subject: str, mount: str
) -> None:
    client = _client(subject, mount=mount)
    user = {"Authorization": "Bearer user-token"}
    assert client.post("/api/tokens/consume", json={"amount": 7}, headers=user).status_code == 200

    read = client.get(_admin_path(subject), headers=ROOT)
    granted = client.post(_admin_path(subject, "grant"), json={"amount": 10}, headers=ROOT)
    consumed = client.post(_admin_path(subject, "consume"), json={"amount": 3}, headers=ROOT)
    upgraded = client.post(_admin_path(subject, "set-plan"), json={"plan": "premium"}, headers=ROOT)
    ledger = client.get(_admin_path(subject, "ledger"), headers=ROOT)

    assert read.status_code == 200, read.json()
    assert (read.json()["subject"], read.json()["token_used"]) == (subject, 7)
    assert [r.status_code for r in (granted, consumed, upgraded, ledger)] == [200] * 4
    assert upgraded.json()["subject"] == subject
    kinds = [entry["kind"] for entry in ledger.json()["entries"]]
    assert kinds == ["plan_changed", "debited", "granted", "debited", "opened"]
    mine = client.get("/api/tokens/usage", headers=user).json()
    assert (mine["plan"], mine["token_used"]) == ("premium", upgraded.json()["token_used"])


def test_a_literal_slash_separates_segments_and_never_reads_as_part_of_a_subject() -> None:
    client = _client("a/b")

    assert client.get("/api/admin/accounts/a/b", headers=ROOT).status_code == 404
    assert client.get("/api/admin/accounts/a%2Fb/", headers=ROOT).status_code == 404
    # An empty subject names no account: the trailing slash is the accounts list's.
    empty = client.get("/api/admin/accounts/", headers=ROOT, follow_redirects=False)
    assert empty.status_code == 307
    assert empty.headers["location"].endswith("/api/admin/accounts")
    assert client.get("/api/admin/accounts//ledger", headers=ROOT).status_code == 404
    assert client.get("/api/admin/accounts/junk/a%2Fb", headers=ROOT).status_code == 404


def test_a_subject_is_decoded_once_not_twice() -> None:
    client = _client("%2F")

    once = client.get("/api/admin/accounts/%252F", headers=ROOT).json()

    assert once["subject"] == "%2F"


def test_a_subject_segment_that_is_not_utf8_is_a_422() -> None:
    response = _client("x").get("/api/admin/accounts/%FF", headers=ROOT)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid request"


def test_a_wrong_method_on_a_slash_subject_is_a_405() -> None:
    response = _client("a/b").delete("/api/admin/accounts/a%2Fb", headers=ROOT)

    assert response.status_code == 405


def test_extra_segments_before_a_mounted_route_are_not_ignored() -> None:
    client = _client("bob", mount="/billing")

    # The client's base URL ends in /billing.
    assert client.get("/api/admin/accounts/bob", headers=ROOT).status_code == 200
    assert client.get("/x/api/admin/accounts/bob", headers=ROOT).status_code == 404
