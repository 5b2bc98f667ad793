"""The usage page through the ASGI app (no browser): links, the session cookie, CSRF,
the security headers, what the page shows, and paying from it."""

from __future__ import annotations

import re
from datetime import timedelta
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import pytest
from openapi_spec_validator import validate
from portal_support import ALICE, BOB, ROOT, SECRET, START, build
from starlette.testclient import TestClient

from tokenplans import ModelUsage, PaymentStatus, Principal
from tokenplans_adapters.portal import COOKIE_NAME, Signer

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ORDER = re.compile(r'name="order_id" value="([^"]+)"')


def _open(client: TestClient, headers: dict[str, str] = ALICE) -> str:
    """Open a fresh link as the user of ``headers``; the page's CSRF token."""
    link = client.post("/api/tokens/portal-link", headers=headers).json()["url"]
    assert client.get(link).status_code == 200
    page = client.get("/account")
    assert page.status_code == 200
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


def _cookie(response: object) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])  # type: ignore[attr-defined]
    return cookie


# -- links and the session ------------------------------------------------------------


def test_a_link_sets_a_strict_httponly_cookie_and_leads_to_the_page() -> None:
    built = build()
    client = TestClient(built.app)

    answer = client.post("/api/tokens/portal-link", headers=ALICE)
    opened = client.get(answer.json()["url"])

    assert answer.status_code == 200
    assert answer.json()["expires_at"] == "2026-03-14T09:35:00Z"  # five minutes
    assert urlsplit(answer.json()["url"]).path == "/account/open"
    assert opened.status_code == 200
    assert '<meta http-equiv="refresh" content="0; url=/account">' in opened.text
    morsel = _cookie(opened)[COOKIE_NAME]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/account"
    assert morsel["max-age"] == "3600"
    assert not morsel["secure"]  # plain http: a Secure cookie would never come back
    assert client.get("/account").status_code == 200


def test_over_https_the_cookie_is_secure() -> None:
    client = TestClient(build().app, base_url="https://billing.example")

    link = client.post("/api/tokens/portal-link", headers=ALICE).json()["url"]
    opened = client.get(link)

    assert link.startswith("https://billing.example/account/open?token=")
    assert _cookie(opened)[COOKIE_NAME]["secure"] is True


def test_a_link_expires_after_its_minutes_and_then_opens_nothing() -> None:
    built = build(link_ttl_seconds=60)
    client = TestClient(built.app)
    link = client.post("/api/tokens/portal-link", headers=ALICE).json()["url"]

    built.clock.advance(timedelta(seconds=60))
    opened = client.get(link)

    assert opened.status_code == 403
    assert "This link has expired" in opened.text
    assert "set-cookie" not in opened.headers
    assert client.get("/account").status_code == 401


def test_a_link_opened_just_before_it_expires_works() -> None:
    built = build(link_ttl_seconds=60)
    client = TestClient(built.app)
    link = client.post("/api/tokens/portal-link", headers=ALICE).json()["url"]

    built.clock.advance(timedelta(seconds=59))

    assert client.get(link).status_code == 200


def test_the_session_ends_after_its_time() -> None:
    built = build(session_ttl_seconds=600)
    client = TestClient(built.app)
    _open(client)

    built.clock.advance(timedelta(seconds=600))
    page = client.get("/account")

    assert page.status_code == 401
    assert "Your session has ended" in page.text
    assert "alice" not in page.text


def test_without_a_session_the_page_is_refused_in_html() -> None:
    page = TestClient(build().app).get("/account")

    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in page.headers


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda s, t: s.sign("link", "bob", t), id="a link is not a session"),
        pytest.param(
            lambda _s, t: Signer("another-secret-of-at-least-32-bytes!!").new_session("alice", t)[
                0
            ],
            id="another server's secret",
        ),
        pytest.param(
            lambda s, t: s.new_session("alice", t)[0][:-2] + "AA", id="a changed signature"
        ),
        pytest.param(lambda _s, _t: "", id="empty"),
    ],
)
def test_a_forged_or_misused_cookie_opens_nothing(forge: object) -> None:
    built = build()
    signer = Signer(SECRET)
    client = TestClient(built.app)
    client.cookies.set(COOKIE_NAME, forge(signer, START + timedelta(hours=1)))  # type: ignore[operator]

    assert client.get("/account").status_code == 401


@pytest.mark.parametrize("token", [None, "", "é.é", "a.b.c", "x" * 3000, "bm90IGpzb24.x"])
def test_the_signer_refuses_what_it_did_not_sign(token: str | None) -> None:
    assert Signer(SECRET).check("session", token, START) is None


def test_the_signer_refuses_a_token_at_its_expiry_instant() -> None:
    signer = Signer(SECRET)
    token = signer.sign("link", "alice", START)

    assert signer.check("link", token, START - timedelta(seconds=1)) is not None
    assert signer.check("link", token, START) is None
    assert signer.check("session", token, START - timedelta(seconds=1)) is None


def test_a_link_edited_to_name_another_subject_opens_nothing() -> None:
    client = TestClient(build().app)
    link = client.post("/api/tokens/portal-link", headers=ALICE).json()["url"]
    token = parse_qs(urlsplit(link).query)["token"][0]
    body, mac = token.split(".")
    bob = Signer(SECRET).sign("link", "bob", START + timedelta(minutes=5)).split(".")[0]

    assert client.get(f"/account/open?token={bob}.{mac}").status_code == 403
    assert client.get(f"/account/open?token={body}.{mac}").status_code == 200


def test_another_subjects_page_is_unreachable() -> None:
    built = build()
    built.service.consume(Principal("bob"), 4321)
    client = TestClient(built.app)
    _open(client, ALICE)

    page = client.get("/account")
    named = client.get("/account?subject=bob")

    assert "alice" in page.text
    assert "bob" not in page.text
    assert "4,321" not in page.text
    assert named.status_code == 422  # nothing in a request names another subject


def test_an_admin_opens_a_subjects_page_and_a_user_cannot() -> None:
    built = build()
    built.service.consume(Principal("bob"), 4321)
    client = TestClient(built.app)

    answer = client.post("/api/admin/accounts/bob/portal-link", headers=ROOT)
    refused = client.post("/api/admin/accounts/bob/portal-link", headers=ALICE)
    anonymous = client.post("/api/tokens/portal-link")
    client.get(answer.json()["url"])
    page = client.get("/account")

    assert answer.status_code == 200
    assert answer.json()["subject"] == "bob"
    assert refused.status_code == 403
    assert anonymous.status_code == 401
    assert "4,321" in page.text
    assert "root" not in page.text


# -- the page -----------------------------------------------------------------------


def test_the_page_shows_the_plan_the_bar_the_chart_and_the_ledger() -> None:
    built = build()
    alice = Principal("alice")
    built.service.consume(alice, usage=ModelUsage("gpt-4o", 1200, 300))
    built.clock.advance(timedelta(days=1))
    built.service.consume(alice, usage=ModelUsage("claude-sonnet", 2000, 500))
    built.service.consume(alice, 250)
    built.service.reserve(alice, 700, hold_id="call-1")
    client = TestClient(built.app)
    _open(client)

    page = client.get("/account").text

    assert 'data-testid="plan">Free<' in page
    assert 'data-testid="remaining">45,050<' in page  # 50,000 - 1,500 - 2,500 - 250 - 700
    assert 'data-testid="used">4,250<' in page
    assert 'data-testid="held">700<' in page
    assert "1 Apr 2026, 00:00 UTC" in page  # the reset
    assert 'data-testid="chart-total">4,250 credits<' in page
    assert "claude-sonnet" in page
    assert "gpt-4o" in page
    assert "Without a model" in page
    assert "call-1" in page
    assert "Reserved" in page
    # two days, three models: three parts in each drawing (the wide one and the narrow one)
    assert page.count('<rect class="series') == 6
    assert "Upgrade to Pro" in page
    assert "://" not in page  # nothing from anywhere else


def test_every_page_is_sent_with_a_strict_content_security_policy() -> None:
    client = TestClient(build().app)
    csrf = _open(client)

    pages = [
        client.get("/account"),
        client.get("/account/open?token=nonsense"),
        client.post("/account/upgrade", data={"csrf": csrf, "plan": "pro"}),
        client.post("/account/upgrade", data={"plan": "pro"}),
    ]

    for page in pages:
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "style-src 'self'" in policy
        assert "script-src" not in policy  # no script at all, by default-src
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text
        assert "style=" not in page.text
        assert "<style" not in page.text


def test_embedding_is_allowed_for_the_configured_origins_only() -> None:
    client = TestClient(build(frame_ancestors=("https://app.example",)).app)
    _open(client)

    page = client.get("/account")

    assert "frame-ancestors https://app.example" in page.headers["content-security-policy"]
    assert "x-frame-options" not in page.headers


def test_the_stylesheet_is_served_by_the_app() -> None:
    client = TestClient(build().app)
    _open(client)
    href = re.search(r'rel="stylesheet" href="([^"]+)"', client.get("/account").text)

    assert href is not None
    sheet = client.get(href.group(1))
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/css")
    assert ".meter" in sheet.text


def test_the_page_is_served_under_a_mount_prefix() -> None:
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.routing import Mount  # noqa: PLC0415

    host = Starlette(routes=[Mount("/billing", build().app)])
    client = TestClient(host)
    link = client.post("/billing/api/tokens/portal-link", headers=ALICE).json()["url"]

    opened = client.get(link)
    page = client.get("/billing/account")

    assert urlsplit(link).path == "/billing/account/open"
    assert _cookie(opened)[COOKIE_NAME]["path"] == "/billing/account"
    assert page.status_code == 200
    assert 'action="/billing/account/upgrade"' in page.text
    assert (
        client.get(
            re.search(r'href="(/billing/account/static/[^"]+)"', page.text).group(1)
        ).status_code
        == 200
    )  # type: ignore[union-attr]


# -- forms: CSRF and paying ----------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"plan": "pro"}, id="no token"),
        pytest.param({"plan": "pro", "csrf": "guess"}, id="a wrong token"),
        pytest.param({"plan": "pro", "csrf": ""}, id="an empty token"),
    ],
)
def test_a_form_without_the_sessions_csrf_token_is_refused(form: dict[str, str]) -> None:
    built = build()
    client = TestClient(built.app)
    _open(client)

    answer = client.post("/account/upgrade", data=form)

    assert answer.status_code == 403
    assert "This form has expired" in answer.text
    assert built.store.payments_of("alice") == []


def test_another_sessions_csrf_token_is_refused() -> None:
    built = build()
    bobs = TestClient(built.app)
    bob_csrf = _open(bobs, BOB)
    client = TestClient(built.app)
    _open(client)

    answer = client.post("/account/upgrade", data={"plan": "pro", "csrf": bob_csrf})

    assert answer.status_code == 403
    assert built.store.payments_of("alice") == []


def test_a_form_posted_as_json_is_refused() -> None:
    client = TestClient(build().app)
    csrf = _open(client)

    assert client.post("/account/upgrade", json={"plan": "pro", "csrf": csrf}).status_code == 415


def test_upgrading_through_the_offline_gateway_updates_the_page() -> None:
    built = build()
    client = TestClient(built.app)
    csrf = _open(client)

    checkout = client.post("/account/upgrade", data={"csrf": csrf, "plan": "pro"})
    order_id = ORDER.search(checkout.text).group(1)  # type: ignore[union-attr]
    paid = client.post(
        "/account/pay", data={"csrf": csrf, "order_id": order_id}, follow_redirects=False
    )
    page = client.get(paid.headers["location"])

    assert checkout.status_code == 200
    assert "USD 19.00" in checkout.text
    assert paid.status_code == 303
    assert paid.headers["location"] == "/account?paid=1"
    assert 'data-testid="plan">Pro<' in page.text
    assert "Payment received" in page.text
    assert 'data-testid="remaining">1,050,000<' in page.text  # 50,000 carried over
    (payment,) = built.store.payments_of("alice")
    assert payment.status is PaymentStatus.PAID


def test_paying_one_order_twice_applies_it_once() -> None:
    built = build()
    client = TestClient(built.app)
    csrf = _open(client)
    checkout = client.post("/account/upgrade", data={"csrf": csrf, "plan": "pro"})
    order_id = ORDER.search(checkout.text).group(1)  # type: ignore[union-attr]

    first = client.post("/account/pay", data={"csrf": csrf, "order_id": order_id})
    second = client.post("/account/pay", data={"csrf": csrf, "order_id": order_id})

    assert first.status_code == second.status_code == 200
    assert built.service.usage(Principal("alice")).token_quota == 1_050_000


def test_an_order_of_another_subject_cannot_be_paid_from_the_page() -> None:
    built = build()
    bobs = TestClient(built.app)
    bob_csrf = _open(bobs, BOB)
    bob_order = ORDER.search(  # type: ignore[union-attr]
        bobs.post("/account/upgrade", data={"csrf": bob_csrf, "plan": "pro"}).text
    ).group(1)
    client = TestClient(built.app)
    csrf = _open(client)

    answer = client.post("/account/pay", data={"csrf": csrf, "order_id": bob_order})

    assert answer.status_code == 400
    assert built.service.usage(Principal("bob")).plan == "free"


def test_without_offline_payments_the_page_cannot_pay_an_order() -> None:
    built = build(offline_payments=False)
    client = TestClient(built.app)
    csrf = _open(client)
    checkout = client.post("/account/upgrade", data={"csrf": csrf, "plan": "pro"})
    order_id = ORDER.search(checkout.text)

    answer = client.post("/account/pay", data={"csrf": csrf, "order_id": "order_x"})

    assert checkout.status_code == 200
    assert order_id is None  # no pay button: the provider's checkout takes the money
    assert answer.status_code == 404
    assert built.service.usage(Principal("alice")).plan == "free"


def test_a_plan_that_cannot_be_bought_is_refused_on_the_page() -> None:
    client = TestClient(build().app)
    csrf = _open(client)

    free = client.post("/account/upgrade", data={"csrf": csrf, "plan": "free"})
    unknown = client.post("/account/upgrade", data={"csrf": csrf, "plan": "gold"})

    assert free.status_code == unknown.status_code == 400
    assert "cannot be bought" in free.text


def test_signing_out_clears_the_cookie() -> None:
    client = TestClient(build().app)
    csrf = _open(client)

    out = client.post("/account/sign-out", data={"csrf": csrf})

    assert out.status_code == 200
    assert _cookie(out)[COOKIE_NAME]["max-age"] == "0"
    assert client.get("/account").status_code == 401


# -- the document ---------------------------------------------------------------------


def test_the_routes_are_in_a_valid_openapi_document() -> None:
    document = TestClient(build().app).get("/openapi.json").json()

    validate(document)
    assert "post" in document["paths"]["/api/tokens/portal-link"]
    assert "post" in document["paths"]["/api/admin/accounts/{subject}/portal-link"]
    assert "get" in document["paths"]["/account"]
