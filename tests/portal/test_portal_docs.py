"""docs/usage-page.md's example runs as written, and its screenshots are the ones the
browser test makes."""

from __future__ import annotations

from doc_blocks import DOCS, fenced
from starlette.applications import Starlette
from starlette.testclient import TestClient

PAGE = DOCS / "usage-page.md"


def test_the_own_app_example_serves_the_page() -> None:
    (block,) = fenced(PAGE, "python", under="## In your own app")
    scope: dict[str, object] = {}

    exec(compile(block, str(PAGE), "exec"), scope)  # noqa: S102 - the documented example

    app = scope["app"]
    assert isinstance(app, Starlette)
    client = TestClient(app)
    page = client.get("/account")  # no session yet: the page says how to open it
    assert page.status_code == 401
    assert "Your session has ended" in page.text
    assert "/api/tokens/portal-link" in client.get("/openapi.json").json()["paths"]


def test_the_screenshots_the_page_shows_are_in_the_repository() -> None:
    for width in (390, 1280):
        image = DOCS / "images" / f"usage-page-{width}.png"
        assert f"images/usage-page-{width}.png" in PAGE.read_text(encoding="utf-8")
        assert image.read_bytes().startswith(b"\x89PNG")
