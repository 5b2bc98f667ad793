"""``tokenplans serve`` runs uvicorn with its access log off unless
``TOKENPLANS_ACCESS_LOG`` turns it on (docs/operations.md, "Request logs")."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from tokenplans_adapters.main.cli import main
from tokenplans_adapters.main.commands import serve

SECRET = "a-secret-that-is-long-enough-for-hs256-0123456789"


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, workdir: Any) -> Iterator[list[dict[str, Any]]]:
    """``serve`` without a server: the keywords ``uvicorn.run`` gets are recorded."""
    saved = dict(os.environ)
    recorded: list[dict[str, Any]] = []
    monkeypatch.setattr(serve, "upgrade_apart", lambda _settings: None)
    monkeypatch.setattr(uvicorn, "run", lambda *_a, **kwargs: recorded.append(kwargs))
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", SECRET)
    yield recorded
    os.environ.clear()
    os.environ.update(saved)


def test_the_access_log_is_off_by_default(runs: list[dict[str, Any]]) -> None:
    assert main(["serve", "--port", "18772"]) == 0

    assert runs[0]["access_log"] is False


@pytest.mark.parametrize(("value", "on"), [("true", True), ("false", False)])
def test_the_access_log_follows_its_setting(
    runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, value: str, on: bool
) -> None:
    monkeypatch.setenv("TOKENPLANS_ACCESS_LOG", value)

    assert main(["serve", "--port", "18773"]) == 0

    assert runs[0]["access_log"] is on
