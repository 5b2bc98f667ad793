"""``max_concurrent_per_subject``: one user cannot take the whole server. Requests are
held open inside a gated store, so "N were in progress" is a fact the test observes."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest
from gated_store import GatedStore, until
from http_support import ALICE, BOB, ROOT, build_app
from starlette.testclient import TestClient

from tokenplans_adapters.http.middleware import SubjectConcurrencyMiddleware
from tokenplans_adapters.main.app import build_app as build_configured_app
from tokenplans_adapters.main.config import ConfigError, Settings

LIMIT = 2


async def _hold_open(
    in_flight: dict[str, int], extra: list[tuple[str, dict[str, str]]]
) -> tuple[list[int], dict[str, int], list[int]]:
    """``in_flight[who]`` usage reads per credential held inside the store, then each
    ``extra`` request (path, headers) made while they wait; then the gate opens. The
    held ones' statuses, each extra's, and then a second round's after all finished."""
    store = GatedStore(threading.get_ident())
    app = build_app(store, max_concurrent_per_subject=LIMIT)
    headers = {"alice": ALICE, "bob": BOB, "root": ROOT}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        held = [
            asyncio.create_task(client.get("/api/tokens/usage", headers=headers[who]))
            for who, count in in_flight.items()
            for _ in range(count)
        ]
        try:
            await until(lambda: store.waiting == len(held))
            assert store.waiting == len(held), "some held request did not reach the store"
            answers: dict[str, httpx.Response] = {}
            for path, extra_headers in extra:
                answer = await asyncio.wait_for(client.get(path, headers=extra_headers), 30)
                answers[path + str(sorted(extra_headers.items()))] = answer
        finally:
            store.gate.set()
        statuses = [(await call).status_code for call in held]
        again = [
            (await client.get("/api/tokens/usage", headers=ALICE)).status_code
            for _ in range(LIMIT + 1)
        ]
    for answer in answers.values():
        if answer.status_code == 429:
            assert answer.json() == {"error": "too many concurrent requests", "limit": LIMIT}
            assert answer.headers["Retry-After"] == "1"
    return statuses, {key: answer.status_code for key, answer in answers.items()}, again


def test_one_request_over_the_limit_is_a_429_and_others_are_served() -> None:
    extra = [
        ("/api/tokens/usage", ALICE),  # alice's third at once: refused
        ("/api/tokens/ledger", ALICE),  # any route of hers
        ("/api/plans", ALICE),  # public, still counted: she is authenticated
        ("/api/health", {}),  # anonymous: not counted
        ("/api/tokens/usage", {"Authorization": "Bearer nobody"}),  # refused token: 401
    ]

    statuses, extras, again = asyncio.run(_hold_open({"alice": LIMIT}, extra))

    assert statuses == [200] * LIMIT  # the held ones finish normally
    assert list(extras.values()) == [429, 429, 429, 200, 401]
    assert again == [200] * (LIMIT + 1)  # the count went back down: one at a time is fine


def test_the_limit_is_per_subject_and_admins_are_not_counted() -> None:
    # All of these wait inside the store at once (the helper waits until they do): none
    # was refused. Bob has his own count; an admin's back end acts for many users.
    in_flight = {"alice": LIMIT, "bob": LIMIT, "root": LIMIT + 3}

    statuses, _, again = asyncio.run(_hold_open(in_flight, []))

    assert statuses == [200] * (3 * LIMIT + 3)
    assert again == [200] * (LIMIT + 1)


def test_without_the_setting_nothing_is_limited() -> None:
    client = TestClient(build_app())

    assert client.get("/api/tokens/usage", headers=ALICE).status_code == 200


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("3", 3), ("", 0)])
def test_the_setting_reads_zero_as_off(value: str, expected: int) -> None:
    settings = Settings.from_env({"TOKENPLANS_MAX_CONCURRENT_PER_SUBJECT": value}, env_file=None)

    assert settings.max_concurrent_per_subject == expected


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_a_bad_setting_is_refused_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="TOKENPLANS_MAX_CONCURRENT_PER_SUBJECT"):
        Settings.from_env({"TOKENPLANS_MAX_CONCURRENT_PER_SUBJECT": value}, env_file=None)


def test_the_composition_root_passes_the_setting_to_the_app(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}",
        jwt_secret="s" * 48,
        max_concurrent_per_subject=3,
    )

    app = build_configured_app(settings)

    (limiter,) = [m for m in app.user_middleware if m.cls is SubjectConcurrencyMiddleware]
    assert limiter.kwargs == {"limit": 3}
