"""The usage page in a real browser: Debian's Chromium under Playwright, against the app
served by uvicorn on 127.0.0.1 (in a thread of this process, so the test's settable clock
is the server's).

It opens a portal link, reads the plan, the bar and the chart and checks their numbers
against the library's, records every request the page makes (none may leave the server),
checks the cookie's flags and the CSP, pays for an upgrade and a pack through the offline
gateway,
and saves screenshots at 390 px and 1280 px into ``TOKENPLANS_SCREENSHOTS_DIR`` (default:
the test's temporary folder) for CI to keep. Skipped without Chromium or Playwright,
except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from portal_support import ALICE, START, Built, build

from tokenplans import ADMIN_SCOPE, ModelUsage, Principal

CHROMIUM = "/usr/bin/chromium"
#: Bounds on waiting for a server or a page that never comes: a failure, not a margin.
START_TIMEOUT_S = 60
PAGE_TIMEOUT_MS = 60_000
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}
#: A month of calls: (model, input tokens, output tokens) by day, cycling.
MODELS = (
    ("gpt-4o", 420, 160),
    ("claude-sonnet-4", 520, 190),
    ("gpt-4o-mini", 300, 90),
    ("gemini-2.0-flash", 260, 70),
)
pytestmark = pytest.mark.slow


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (the test extra has it)"
    if shutil.which(CHROMIUM) is None:
        return f"no {CHROMIUM} (Debian's chromium package)"
    return None


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    missing = _browser_missing()
    if missing is not None:
        message = f"cannot open a browser: {missing}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TOKENPLANS_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _seeded() -> Built:
    """Alice on the free plan with a month of calls on four models, and a call in progress
    (a hold her back end placed)."""
    built = build()
    alice, backend = Principal("alice"), Principal("backend", frozenset({ADMIN_SCOPE}))
    built.clock.set(START - timedelta(days=29, hours=8))
    for day in range(30):
        for call in range(2 + day % 3):
            model, inputs, outputs = MODELS[(day + call) % len(MODELS)]
            built.service.consume(
                alice, usage=ModelUsage(model, inputs + 19 * day, outputs + 11 * call)
            )
        built.clock.advance(timedelta(days=1))
    built.clock.set(START)
    built.service.reserve(backend, 1800, subject="alice", hold_id="chat-7f3a")
    return built


@pytest.fixture
def served() -> Iterator[tuple[Built, str]]:
    built = _seeded()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(built.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield built, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
        listener.close()


def _link(base: str, headers: dict[str, str] = ALICE) -> str:
    answer = httpx.post(f"{base}/api/tokens/portal-link", headers=headers, timeout=30)
    assert answer.status_code == 200
    url: str = answer.json()["url"]
    return url


class _Recorded:
    """A browser page whose every request is recorded, and refused unless it is for the
    server under test."""

    def __init__(self, browser: Any, base: str, width: str = "desktop") -> None:
        viewport_width, height = WIDTHS[width]
        self.context = browser.new_context(viewport={"width": viewport_width, "height": height})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.refused: list[str] = []
        self.violations: list[str] = []
        host = urlsplit(base).netloc

        def only_local(route: Any) -> None:
            url = route.request.url
            self.requests.append(url)
            if urlsplit(url).netloc == host:
                route.continue_()
            else:
                self.refused.append(url)
                route.abort()

        self.page.route("**/*", only_local)
        self.page.on(
            "console",
            lambda message: (
                self.violations.append(message.text) if message.type == "error" else None
            ),
        )

    def open(self, link: str) -> Any:
        """Open ``link`` and wait for the page it leads to."""
        self.page.goto(link, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        self.page.wait_for_url("**/account*", timeout=PAGE_TIMEOUT_MS)
        self.page.wait_for_load_state("load", timeout=PAGE_TIMEOUT_MS)
        return self.page

    def close(self) -> None:
        self.context.close()


def _testid(page: Any, name: str) -> str:
    text: str = page.locator(f'[data-testid="{name}"]').inner_text(timeout=PAGE_TIMEOUT_MS)
    return text.strip()


def test_a_portal_link_opens_the_page_with_the_right_numbers(
    chromium: Any, served: tuple[Built, str], screenshots: Path
) -> None:
    built, base = served
    usage = built.service.usage(Principal("alice"))
    report = built.service.usage_report(
        Principal("alice"),
        start=START.date() - timedelta(days=29),
        end=START.date(),
        group_by=("day", "model"),
    )
    per_day = {row.day for row in report.rows}
    browser = _Recorded(chromium, base)
    try:
        page = browser.open(_link(base))
        response = page.request.get(f"{base}/account")  # the headers of the page itself

        assert _testid(page, "plan") == "Free"
        assert _testid(page, "remaining") == f"{usage.remaining:,}"
        assert _testid(page, "used") == f"{usage.token_used:,}"
        assert _testid(page, "held") == "1,800"
        assert _testid(page, "resets") == "1 Apr 2026, 00:00 UTC"
        bar = page.locator('[data-testid="usage-bar"] rect')
        values = {
            bar.nth(i).get_attribute("data-kind"): int(bar.nth(i).get_attribute("data-value"))
            for i in range(bar.count())
        }
        assert values == {
            "used": usage.token_used,
            "held": usage.token_held,
            "free": usage.remaining,
        }
        assert _testid(page, "chart-total") == f"{report.totals.credits:,} credits"
        assert not page.locator('[data-testid="chart-narrow"]').is_visible()
        columns = page.locator('[data-testid="chart"] rect.series')
        assert columns.count() == len(report.rows)  # one stacked part per day and model
        assert len(per_day) == 30
        first_model = page.locator('[data-testid="models"] tbody th').first.inner_text()
        assert first_model == max(
            {row.model for row in report.rows},
            key=lambda model: sum(r.credits for r in report.rows if r.model == model),
        )
        assert page.locator('[data-testid="holds"]').inner_text().count("chat-7f3a") == 1
        # The page's own headers, and nothing but the server asked for.
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert browser.refused == []
        assert browser.requests
        assert all(url.startswith(base) for url in browser.requests)
        assert any(url.endswith(".css") for url in browser.requests)
        assert browser.violations == []  # no CSP violation: the page obeys its own policy
        (cookie,) = browser.context.cookies()
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["secure"] is False  # plain http on 127.0.0.1
        assert cookie["path"] == "/account"
        assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it
        page.screenshot(path=screenshots / "usage-page-1280.png", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 390  # nothing overflows a phone's width
        assert page.locator('[data-testid="chart-narrow"]').is_visible()
        assert not page.locator('[data-testid="chart"]').is_visible()
        narrow = page.locator('[data-testid="chart-narrow"] rect.series')
        assert narrow.count() == len(report.rows)
        page.screenshot(path=screenshots / "usage-page-390.png", full_page=True)
    finally:
        browser.close()


def test_a_link_clicked_on_another_site_still_opens_the_page(
    chromium: Any, served: tuple[Built, str]
) -> None:
    """A SameSite=Strict cookie is not sent on a redirect another site started; the link
    leads on from a page of ours, so a link in the host app or an e-mail works."""
    _built, base = served
    browser = _Recorded(chromium, base)
    try:
        browser.page.set_content(f'<a id="go" href="{_link(base)}">Your usage</a>')
        browser.page.click("#go")
        browser.page.wait_for_url("**/account", timeout=PAGE_TIMEOUT_MS)

        assert _testid(browser.page, "plan") == "Free"
    finally:
        browser.close()


def test_an_expired_link_opens_nothing_and_a_session_ends(
    chromium: Any, served: tuple[Built, str]
) -> None:
    built, base = served
    stale = _link(base)
    built.clock.advance(timedelta(minutes=5))
    browser = _Recorded(chromium, base)
    try:
        browser.page.goto(stale, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        assert "This link has expired" in browser.page.inner_text("h1")

        browser.open(_link(base))
        assert _testid(browser.page, "plan") == "Free"
        built.clock.advance(timedelta(hours=1))
        browser.page.reload(wait_until="load", timeout=PAGE_TIMEOUT_MS)
        assert "Your session has ended" in browser.page.inner_text("h1")
        assert "alice" not in browser.page.content()
    finally:
        browser.close()


def test_another_subjects_page_is_unreachable(chromium: Any, served: tuple[Built, str]) -> None:
    built, base = served
    built.service.consume(Principal("bob"), 4321)
    browser = _Recorded(chromium, base)
    try:
        page = browser.open(_link(base))
        named = page.goto(f"{base}/account?subject=bob", timeout=PAGE_TIMEOUT_MS)
        page.goto(f"{base}/account", timeout=PAGE_TIMEOUT_MS)

        assert named is not None
        assert named.status == 422
        assert "bob" not in page.content()
        assert "4,321" not in page.content()
        assert "alice" in page.content()
    finally:
        browser.close()


def _pay_through_checkout(page: Any, button: str) -> str:
    """Click ``button``, pay on the offline checkout page, and come back to the usage
    page; the amount the checkout showed."""
    page.click(f'[data-testid="{button}"]')
    page.wait_for_selector('[data-testid="checkout-amount"]', timeout=PAGE_TIMEOUT_MS)
    amount = _testid(page, "checkout-amount")
    page.click('[data-testid="pay"]')
    page.wait_for_url("**/account?paid=1", timeout=PAGE_TIMEOUT_MS)
    return amount


def test_upgrading_through_the_offline_gateway_updates_the_page(
    chromium: Any, served: tuple[Built, str]
) -> None:
    built, base = served
    browser = _Recorded(chromium, base)
    try:
        page = browser.open(_link(base))
        before = built.service.usage(Principal("alice"))
        assert _pay_through_checkout(page, "upgrade-pro") == "USD 19.00"

        after = built.service.usage(Principal("alice"))
        assert _testid(page, "plan") == "Pro"
        assert _testid(page, "remaining") == f"{after.remaining:,}"
        assert after.token_quota == 1_000_000 + before.token_quota - before.token_used
        assert "Payment received" in page.inner_text("main")
        assert browser.refused == []
    finally:
        browser.close()


def test_buying_a_pack_through_the_offline_gateway_adds_its_lot_to_the_page(
    chromium: Any, served: tuple[Built, str]
) -> None:
    built, base = served
    browser = _Recorded(chromium, base)
    try:
        page = browser.open(_link(base))
        before = built.service.usage(Principal("alice"))
        assert "Purchased" not in page.locator('[data-testid="lots"]').inner_text()
        assert _pay_through_checkout(page, "pack-boost") == "USD 5.00"

        after = built.service.usage(Principal("alice"))
        assert _testid(page, "plan") == "Free"  # a pack leaves the plan as it is
        assert after.token_quota == before.token_quota + 200_000
        assert _testid(page, "remaining") == f"{after.remaining:,}"
        rows = page.locator('[data-testid="lots"] tbody tr')
        purchased = [rows.nth(i).inner_text() for i in range(rows.count())]
        assert [row.split("\t")[:3] for row in purchased if row.startswith("Purchased")] == [
            ["Purchased", "200,000", "200,000"]
        ]
        assert "Payment received" in page.inner_text("main")
        assert browser.refused == []
    finally:
        browser.close()


def test_a_form_without_its_csrf_token_is_refused(chromium: Any, served: tuple[Built, str]) -> None:
    built, base = served
    browser = _Recorded(chromium, base)
    try:
        page = browser.open(_link(base))
        page.locator('form:has([data-testid="upgrade-pro"]) input[name="csrf"]').evaluate(
            "input => input.remove()"
        )
        page.click('[data-testid="upgrade-pro"]')
        page.wait_for_load_state("load", timeout=PAGE_TIMEOUT_MS)

        assert "This form has expired" in page.inner_text("h1")
        assert built.store.payments_of("alice") == []
    finally:
        browser.close()
