"""Holds over HTTP (docs/holds.md): every route, its status codes and
bodies, who may touch which hold, and that a refused request changes nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from http_support import ALICE, BOB, ROOT, build_app
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from tokenplans import ADMIN_SCOPE, MAX_OPEN_HOLDS, Principal, TokenService
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.http import install_error_handlers

HOLDS = "/api/tokens/holds"
NOON = "2026-01-15T12:00:00Z"
BASIC = {
    "plan": "basic",
    "token_quota": 1000,
    "plan_end_at": None,
    "period_start": "2026-01-01T00:00:00Z",
    "period_end": "2026-02-01T00:00:00Z",
}


def _usage(subject: str, used: int, held: int) -> dict[str, Any]:
    return {
        **BASIC,
        "subject": subject,
        "token_used": used,
        "token_held": held,
        "remaining": max(0, 1000 - used - held),
    }


def _state(store: InMemoryStore, subject: str) -> tuple[object, ...]:
    """Everything a request could change on ``subject``'s account."""
    return (
        store.load(subject),
        tuple(store.outstanding(subject).holds),
        tuple(store.history(subject, limit=1000)),
    )


def _reserve(client: TestClient, amount: int, hold_id: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        HOLDS, headers=ALICE, json={"amount": amount, "hold_id": hold_id, **extra}
    )
    assert response.status_code == 201, response.json()
    body: dict[str, Any] = response.json()
    return body


def _one(hold_id: str, action: str = "", prefix: str = HOLDS) -> str:
    path = f"{prefix}/{quote(hold_id, safe='')}"
    return f"{path}/{action}" if action else path


class CountingStore(InMemoryStore):
    """An in-memory store that counts the account reads made through it."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    def load(self, subject: str) -> Any:
        self.loads += 1
        return super().load(subject)


def test_a_hold_answer_shows_the_usage_its_change_left_without_reading_the_account_again() -> None:
    """Each answer of a reserve, settle, release and read shows the usage as the change
    (or read) left it, from that change: one read of the account per request."""
    store = CountingStore()
    with TestClient(build_app(store)) as client:
        steps = [
            ("post", HOLDS, {"amount": 300, "hold_id": "a"}, _usage("alice", 0, 300)),
            ("get", _one("a"), None, _usage("alice", 0, 300)),
            ("post", _one("a", "settle"), {"amount": 120}, _usage("alice", 120, 0)),
            ("post", HOLDS, {"amount": 50, "hold_id": "b"}, _usage("alice", 120, 50)),
            ("post", _one("b", "release"), {}, _usage("alice", 120, 0)),
        ]
        for method, path, body, usage in steps:
            before = store.loads
            response = client.request(method, path, headers=ALICE, json=body)
            assert response.status_code in (200, 201), response.json()
            assert {name: response.json()[name] for name in usage} == usage
            assert store.loads - before == 1, (method, path)


# -- reserve ----------------------------------------------------------------------


def test_a_reserve_is_201_with_the_hold_and_the_usage_after_it(client: TestClient) -> None:
    response = client.post(
        HOLDS, headers=ALICE, json={"amount": 400, "hold_id": "chat-42", "ttl_seconds": 120}
    )

    assert response.status_code == 201
    assert response.json() == {
        **_usage("alice", used=0, held=400),
        "hold_id": "chat-42",
        "placed_by": "alice",
        "status": "open",
        "amount": 400,
        "created_at": NOON,
        "expires_at": "2026-01-15T12:02:00Z",
        "settled": None,
        "overage": 0,
        "late": False,
        "closed_at": None,
        "replayed": False,
    }
    usage = client.get("/api/tokens/usage", headers=ALICE).json()
    assert (usage["token_held"], usage["remaining"]) == (400, 600)


def test_a_reserve_without_an_id_or_ttl_gets_a_generated_id_and_five_minutes(
    client: TestClient,
) -> None:
    first = client.post(HOLDS, headers=ALICE, json={"amount": 10})
    second = client.post(HOLDS, headers=ALICE, json={"amount": 10, "hold_id": None})

    assert [first.status_code, second.status_code] == [201, 201]
    ids = {first.json()["hold_id"], second.json()["hold_id"]}
    assert len(ids) == 2
    assert all(hold_id.startswith("hold_") for hold_id in ids)
    assert first.json()["expires_at"] == "2026-01-15T12:05:00Z"
    assert second.json()["token_held"] == 20


def test_the_same_reserve_again_is_200_replayed_and_holds_nothing_more(
    client: TestClient, store: InMemoryStore
) -> None:
    first = _reserve(client, 400, "chat-42")
    before = _state(store, "alice")

    again = client.post(HOLDS, headers=ALICE, json={"amount": 400, "hold_id": "chat-42"})

    assert again.status_code == 200
    assert again.json() == {**first, "replayed": True}
    assert _state(store, "alice") == before


def test_reserving_a_closed_holds_id_again_is_409_already_processed(
    client: TestClient, store: InMemoryStore
) -> None:
    """A finished request never looks like a fresh success (a 2xx): a back end that
    checks only the status would call the model again with nothing held."""
    _reserve(client, 400, "chat-42")
    client.post(_one("chat-42", "settle"), headers=ALICE, json={"amount": 250})
    before = _state(store, "alice")

    again = client.post(HOLDS, headers=ALICE, json={"amount": 400, "hold_id": "chat-42"})

    assert again.status_code == 409
    assert again.json() == {
        "error": "already processed",
        "hold_id": "chat-42",
        "status": "settled",
        "settled": 250,
        "message": "request 'chat-42' was already processed",
    }
    assert _state(store, "alice") == before


def test_a_reserve_beyond_what_remains_is_402_and_changes_nothing(
    client: TestClient, store: InMemoryStore
) -> None:
    _reserve(client, 300, "first")
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 600})
    before = _state(store, "alice")

    response = client.post(HOLDS, headers=ALICE, json={"amount": 101, "hold_id": "second"})

    assert (response.status_code, response.json()) == (
        402,
        {"error": "insufficient tokens", "remaining": 100, "requested": 101},
    )
    assert _state(store, "alice") == before
    assert client.get(_one("second"), headers=ALICE).status_code == 404


def test_a_reserve_of_a_known_id_for_another_amount_is_409_naming_the_hold(
    client: TestClient, store: InMemoryStore
) -> None:
    _reserve(client, 400, "chat-42")
    before = _state(store, "alice")

    response = client.post(HOLDS, headers=ALICE, json={"amount": 401, "hold_id": "chat-42"})

    assert response.status_code == 409
    body = response.json()
    assert {key: body[key] for key in ("error", "hold_id", "status", "amount", "settled")} == {
        "error": "hold conflict",
        "hold_id": "chat-42",
        "status": "open",
        "amount": 400,
        "settled": None,
    }
    assert "401" in body["message"]
    assert _state(store, "alice") == before


def test_one_hold_more_than_the_open_limit_is_409_too_many_open_holds(
    client: TestClient, service: TokenService, store: InMemoryStore
) -> None:
    alice = Principal("alice")
    service.grant(Principal("root", {ADMIN_SCOPE}), 10, subject="alice")
    for number in range(MAX_OPEN_HOLDS):
        service.reserve(alice, 1, hold_id=f"h{number}")
    before = _state(store, "alice")

    response = client.post(HOLDS, headers=ALICE, json={"amount": 1, "hold_id": "one-more"})

    assert response.status_code == 409
    assert (response.json()["error"], response.json()["limit"]) == (
        "too many open holds",
        MAX_OPEN_HOLDS,
    )
    assert _state(store, "alice") == before
    listed = client.get(HOLDS, headers=ALICE).json()
    assert (len(listed["holds"]), listed["token_held"]) == (MAX_OPEN_HOLDS, MAX_OPEN_HOLDS)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not valid JSON"),
        (b"[400]", "must be a JSON object"),
        (b"{}", "send amount or estimate: exactly one"),
        (b'{"amount": "400"}', "amount must be an integer"),
        (b'{"amount": 0}', "between 1 and"),
        (b'{"amount": 10, "hold_id": ""}', "hold_id must be 1 to 255"),
        (b'{"amount": 10, "hold_id": 42}', "hold_id must be a string"),
        (b'{"amount": 10, "hold_id": "' + b"x" * 256 + b'"}', "hold_id must be 1 to 255"),
        (b'{"amount": 10, "hold_id": "a\\u0000b"}', "without NUL"),
        (b'{"amount": 10, "ttl_seconds": 0}', "ttl_seconds must be an integer from 1 to 86400"),
        (b'{"amount": 10, "ttl_seconds": 86401}', "ttl_seconds must be an integer from 1"),
        (b'{"amount": 10, "ttl_seconds": 60.0}', "ttl_seconds must be an integer"),
        (b'{"amount": 10, "ttl_seconds": true}', "ttl_seconds must be an integer"),
        (b'{"amount": 10, "subject": "bob"}', "unknown field(s): subject"),
    ],
)
def test_a_malformed_reserve_is_422_and_changes_nothing(
    client: TestClient, store: InMemoryStore, body: bytes, message: str
) -> None:
    _reserve(client, 5, "existing")
    before = _state(store, "alice")

    response = client.post(HOLDS, headers=ALICE, content=body)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid request"
    assert message in response.json()["message"]
    assert _state(store, "alice") == before


# -- settle -----------------------------------------------------------------------


def test_a_settle_below_the_hold_frees_the_rest(client: TestClient) -> None:
    _reserve(client, 400, "chat-42")

    response = client.post(_one("chat-42", "settle"), headers=ALICE, json={"amount": 250})

    assert response.status_code == 200
    assert response.json() == {
        **_usage("alice", used=250, held=0),
        "hold_id": "chat-42",
        "placed_by": "alice",
        "status": "settled",
        "amount": 400,
        "created_at": NOON,
        "expires_at": "2026-01-15T12:05:00Z",
        "settled": 250,
        "overage": 0,
        "late": False,
        "closed_at": NOON,
        "replayed": False,
    }


def test_a_settle_above_the_hold_takes_what_remains_then_records_the_overage(
    client: TestClient,
) -> None:
    _reserve(client, 100, "big-call")
    _reserve(client, 50, "other-call")  # never eaten into
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 800})  # 50 remain

    response = client.post(_one("big-call", "settle"), headers=ALICE, json={"amount": 300})

    assert response.status_code == 200
    body = response.json()
    assert (body["settled"], body["overage"]) == (300, 150)  # 300 - 100 held - 50 remaining
    assert (body["token_used"], body["token_held"], body["remaining"]) == (1100, 50, 0)
    assert client.get(_one("other-call"), headers=ALICE).json()["status"] == "open"


def test_a_settle_of_nothing_is_accepted(client: TestClient) -> None:
    _reserve(client, 400, "unused")

    response = client.post(_one("unused", "settle"), headers=ALICE, json={"amount": 0})

    assert (response.status_code, response.json()["settled"]) == (200, 0)
    assert (response.json()["token_used"], response.json()["remaining"]) == (0, 1000)


def test_the_same_settle_again_answers_the_first_result_and_changes_nothing(
    client: TestClient, store: InMemoryStore
) -> None:
    _reserve(client, 400, "chat-42")
    first = client.post(_one("chat-42", "settle"), headers=ALICE, json={"amount": 250}).json()
    before = _state(store, "alice")

    again = client.post(_one("chat-42", "settle"), headers=ALICE, json={"amount": 250})

    assert again.status_code == 200
    assert again.json() == {**first, "replayed": True}
    assert _state(store, "alice") == before


@pytest.mark.parametrize(
    "case",
    [
        ("settle", "settle", {"amount": 251}, "settled"),
        ("settle", "release", None, "settled"),
        ("release", "settle", {"amount": 250}, "released"),
    ],
    ids=["settle-another-amount", "release-a-settled-hold", "settle-a-released-hold"],
)
def test_closing_a_closed_hold_another_way_is_409_naming_its_final_state(
    client: TestClient,
    store: InMemoryStore,
    case: tuple[str, str, dict[str, int] | None, str],
) -> None:
    close_first, then, body, final = case
    _reserve(client, 400, "chat-42")
    first = {"amount": 250} if close_first == "settle" else None
    assert client.post(_one("chat-42", close_first), headers=ALICE, json=first).status_code == 200
    before = _state(store, "alice")

    response = client.post(_one("chat-42", then), headers=ALICE, json=body)

    assert response.status_code == 409
    answer = response.json()
    assert (answer["error"], answer["hold_id"], answer["status"]) == (
        "hold conflict",
        "chat-42",
        final,
    )
    assert answer["settled"] == (250 if final == "settled" else None)
    assert _state(store, "alice") == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not valid JSON"),
        (b"{}", "send amount or usage: exactly one"),
        (b'{"amount": -1}', "between 0 and"),
        (b'{"amount": 2.5}', "amount must be an integer"),
        (b'{"amount": 5, "hold_id": "other"}', "unknown field(s): hold_id"),
    ],
)
def test_a_malformed_settle_is_422_and_changes_nothing(
    client: TestClient, store: InMemoryStore, body: bytes, message: str
) -> None:
    _reserve(client, 400, "chat-42")
    before = _state(store, "alice")

    response = client.post(_one("chat-42", "settle"), headers=ALICE, content=body)

    assert (response.status_code, response.json()["error"]) == (422, "invalid request")
    assert message in response.json()["message"]
    assert _state(store, "alice") == before


def test_settling_an_unknown_hold_is_404(client: TestClient, store: InMemoryStore) -> None:
    response = client.post(_one("nope", "settle"), headers=ALICE, json={"amount": 5})

    assert (response.status_code, response.json()) == (
        404,
        {"error": "hold not found", "hold_id": "nope"},
    )
    assert store.load("alice") is None


# -- release ----------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, b"", b"{}"], ids=["no-body", "empty", "empty-object"])
def test_a_release_frees_the_hold_whatever_empty_body_it_has(
    client: TestClient, body: bytes | None
) -> None:
    _reserve(client, 400, "chat-42")

    response = client.post(_one("chat-42", "release"), headers=ALICE, content=body)

    assert response.status_code == 200
    assert {key: response.json()[key] for key in ("hold_id", "status", "settled", "closed_at")} == {
        "hold_id": "chat-42",
        "status": "released",
        "settled": None,
        "closed_at": NOON,
    }
    assert (response.json()["token_held"], response.json()["remaining"]) == (0, 1000)


def test_the_same_release_again_is_replayed_and_changes_nothing(
    client: TestClient, store: InMemoryStore
) -> None:
    _reserve(client, 400, "chat-42")
    first = client.post(_one("chat-42", "release"), headers=ALICE).json()
    before = _state(store, "alice")

    again = client.post(_one("chat-42", "release"), headers=ALICE)

    assert (again.status_code, again.json()) == (200, {**first, "replayed": True})
    assert _state(store, "alice") == before


@pytest.mark.parametrize(
    "body", [b'{"amount": 5}', b"[]", b"null", b"{"], ids=["field", "array", "null", "broken"]
)
def test_a_release_with_a_body_other_than_an_empty_object_is_422_and_changes_nothing(
    client: TestClient, store: InMemoryStore, body: bytes
) -> None:
    _reserve(client, 400, "chat-42")
    before = _state(store, "alice")

    response = client.post(_one("chat-42", "release"), headers=ALICE, content=body)

    assert response.status_code == 422
    assert _state(store, "alice") == before


# -- expiry and late settles --------------------------------------------------------


def test_an_expired_hold_frees_its_tokens_and_reads_as_expired(
    client: TestClient, clock: SettableClock
) -> None:
    _reserve(client, 400, "chat-42", ttl_seconds=60)
    clock.advance(seconds=61)

    usage = client.get("/api/tokens/usage", headers=ALICE).json()
    listed = client.get(HOLDS, headers=ALICE).json()
    one = client.get(_one("chat-42"), headers=ALICE).json()

    assert (usage["token_held"], usage["remaining"]) == (0, 1000)
    assert (listed["holds"], listed["token_held"]) == ([], 0)
    assert (one["status"], one["closed_at"], one["token_held"]) == (
        "expired",
        "2026-01-15T12:01:00Z",
        0,
    )


def test_a_release_after_expiry_answers_the_expired_hold_and_changes_nothing(
    client: TestClient, clock: SettableClock
) -> None:
    _reserve(client, 400, "chat-42", ttl_seconds=60)
    clock.advance(minutes=5)

    response = client.post(_one("chat-42", "release"), headers=ALICE)

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["token_used"]) == ("expired", 0)
    assert client.get("/api/tokens/usage", headers=ALICE).json()["remaining"] == 1000


def test_a_late_settle_is_accepted_and_charged(client: TestClient, clock: SettableClock) -> None:
    _reserve(client, 400, "chat-42", ttl_seconds=60)
    clock.advance(minutes=5)

    response = client.post(_one("chat-42", "settle"), headers=ALICE, json={"amount": 250})

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["settled"], body["late"], body["overage"]) == (
        "settled",
        250,
        True,
        0,
    )
    assert (body["token_used"], body["token_held"], body["remaining"]) == (250, 0, 750)
    assert client.get(_one("chat-42"), headers=ALICE).json()["late"] is True


# -- reading ------------------------------------------------------------------------


def test_the_list_shows_the_open_holds_oldest_first_with_the_usage(
    client: TestClient, clock: SettableClock
) -> None:
    _reserve(client, 100, "b-first")
    clock.advance(seconds=1)
    _reserve(client, 200, "a-second")
    _reserve(client, 50, "settled")
    client.post(_one("settled", "settle"), headers=ALICE, json={"amount": 50})

    response = client.get(HOLDS, headers=ALICE)

    assert response.status_code == 200
    body = response.json()
    assert [(h["hold_id"], h["amount"], h["status"]) for h in body["holds"]] == [
        ("b-first", 100, "open"),
        ("a-second", 200, "open"),
    ]
    assert {key: body[key] for key in _usage("alice", 50, 300)} == _usage("alice", 50, 300)
    assert "replayed" not in body["holds"][0]


def test_one_hold_reads_in_every_status(client: TestClient, clock: SettableClock) -> None:
    for hold_id in ("open", "settled", "released", "expired"):
        _reserve(client, 10, hold_id, ttl_seconds=3600 if hold_id != "expired" else 1)
    client.post(_one("settled", "settle"), headers=ALICE, json={"amount": 7})
    client.post(_one("released", "release"), headers=ALICE)
    clock.advance(seconds=2)

    answers = {
        hold_id: client.get(_one(hold_id), headers=ALICE)
        for hold_id in ("open", "settled", "released", "expired")
    }

    assert {hold_id: r.status_code for hold_id, r in answers.items()} == dict.fromkeys(answers, 200)
    assert {hold_id: r.json()["status"] for hold_id, r in answers.items()} == {
        hold_id: hold_id for hold_id in answers
    }
    assert all(r.json()["replayed"] is False for r in answers.values())
    assert all(r.json()["token_held"] == 10 for r in answers.values())  # the open one


def test_an_unknown_hold_is_404_hold_not_found(client: TestClient) -> None:
    response = client.get(_one("never-made"), headers=ALICE)

    assert (response.status_code, response.json()) == (
        404,
        {"error": "hold not found", "hold_id": "never-made"},
    )


def test_the_ledger_names_each_hold_and_how_it_moved_the_held_tokens(client: TestClient) -> None:
    _reserve(client, 400, "chat-42")
    client.post(_one("chat-42", "settle"), headers=ALICE, json={"amount": 250})

    entries = client.get("/api/tokens/ledger", headers=ALICE).json()["entries"]

    assert [(e["kind"], e["hold_id"], e["held_delta"], e["token_held"]) for e in entries] == [
        ("hold_settled", "chat-42", -400, 0),
        ("hold_placed", "chat-42", 400, 400),
        ("opened", None, 0, 0),
    ]
    assert entries[0]["used_delta"] == 250


# -- hold ids in the path ------------------------------------------------------------


@pytest.mark.parametrize("hold_id", ["a/b", "%", "100%25", "with space", "ünï/ユ", "..", "a?b#c"])
def test_any_hold_id_is_addressable_percent_encoded(client: TestClient, hold_id: str) -> None:
    _reserve(client, 10, hold_id)
    path = _one(hold_id).replace(".", "%2E")

    read = client.get(path, headers=ALICE)
    settled = client.post(f"{path}/settle", headers=ALICE, json={"amount": 3})

    assert (read.status_code, read.json()["hold_id"]) == (200, hold_id)
    assert (settled.status_code, settled.json()["settled"]) == (200, 3)


def test_a_hold_id_is_addressable_when_the_app_is_mounted() -> None:
    host = Starlette(routes=[Mount("/billing", app=build_app())])
    client = TestClient(host, base_url="http://testserver/billing")
    client.post(HOLDS, headers=ALICE, json={"amount": 10, "hold_id": "a/b"})

    released = client.post(_one("a/b", "release"), headers=ALICE)

    assert (released.status_code, released.json()["status"]) == (200, "released")


def test_a_release_declaring_a_body_that_is_not_json_is_415_and_changes_nothing(
    client: TestClient, store: InMemoryStore
) -> None:
    _reserve(client, 400, "chat-42")
    before = _state(store, "alice")

    response = client.post(
        _one("chat-42", "release"), headers={**ALICE, "Content-Type": "text/plain"}
    )

    assert (response.status_code, response.json()["error"]) == (415, "unsupported media type")
    assert _state(store, "alice") == before


def test_a_literal_slash_in_the_path_never_reads_as_part_of_a_hold_id(
    client: TestClient,
) -> None:
    _reserve(client, 10, "a/b")

    assert client.get(f"{HOLDS}/a/b", headers=ALICE).json() == {"error": "not found"}
    assert client.post(f"{HOLDS}/a/b/settle", headers=ALICE, json={"amount": 1}).status_code == 404


def test_a_hold_id_longer_than_255_characters_in_the_path_is_422(client: TestClient) -> None:
    for path in (_one("x" * 256), _one("x" * 256, "settle"), _one("x" * 256, "release")):
        method = "GET" if path == _one("x" * 256) else "POST"
        response = client.request(method, path, headers=ALICE, json={"amount": 1})

        assert (response.status_code, response.json()["error"]) == (422, "invalid request")


def test_the_holds_path_lists_both_its_methods_in_a_405(client: TestClient) -> None:
    response = client.delete(HOLDS, headers=ALICE)

    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


# -- who may touch which hold ---------------------------------------------------------


def test_another_users_hold_is_not_found_and_never_changed(
    client: TestClient, store: InMemoryStore
) -> None:
    _reserve(client, 400, "chat-42")
    before = _state(store, "alice")

    read = client.get(_one("chat-42"), headers=BOB)
    settled = client.post(_one("chat-42", "settle"), headers=BOB, json={"amount": 400})
    released = client.post(_one("chat-42", "release"), headers=BOB)
    listed = client.get(HOLDS, headers=BOB)

    for response in (read, settled, released):
        assert (response.status_code, response.json()) == (
            404,
            {"error": "hold not found", "hold_id": "chat-42"},
        )
    assert (listed.json()["holds"], listed.json()["subject"]) == ([], "bob")
    assert _state(store, "alice") == before


def test_the_same_hold_id_on_two_accounts_is_two_holds(client: TestClient) -> None:
    _reserve(client, 400, "chat-42")

    bobs = client.post(HOLDS, headers=BOB, json={"amount": 30, "hold_id": "chat-42"})
    client.post(_one("chat-42", "settle"), headers=BOB, json={"amount": 30})

    assert (bobs.status_code, bobs.json()["subject"], bobs.json()["amount"]) == (201, "bob", 30)
    alices = client.get(_one("chat-42"), headers=ALICE).json()
    assert (alices["status"], alices["amount"], alices["token_held"]) == ("open", 400, 400)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", HOLDS, {"amount": 1}),
        ("GET", HOLDS, None),
        ("GET", f"{HOLDS}/h", None),
        ("POST", f"{HOLDS}/h/settle", {"amount": 1}),
        ("POST", f"{HOLDS}/h/release", None),
        ("POST", "/api/admin/accounts/alice/holds", {"amount": 1}),
        ("GET", "/api/admin/accounts/alice/holds", None),
        ("GET", "/api/admin/accounts/alice/holds/h", None),
        ("POST", "/api/admin/accounts/alice/holds/h/settle", {"amount": 1}),
        ("POST", "/api/admin/accounts/alice/holds/h/release", None),
    ],
)
def test_every_hold_route_needs_a_credential(
    client: TestClient, method: str, path: str, body: object
) -> None:
    response = client.request(method, path, json=body)

    assert (response.status_code, response.json()) == (401, {"error": "unauthorized"})
    assert response.headers["WWW-Authenticate"] == "Bearer"


# -- admin ----------------------------------------------------------------------------

BOBS = "/api/admin/accounts/bob/holds"


def test_an_admin_reserves_settles_and_releases_on_any_account(client: TestClient) -> None:
    reserved = client.post(BOBS, headers=ROOT, json={"amount": 300, "hold_id": "job-1"})
    again = client.post(BOBS, headers=ROOT, json={"amount": 300, "hold_id": "job-1"})
    client.post(BOBS, headers=ROOT, json={"amount": 100, "hold_id": "job-2"})
    listed = client.get(BOBS, headers=ROOT)
    read = client.get(_one("job-1", prefix=BOBS), headers=ROOT)
    settled = client.post(_one("job-1", "settle", BOBS), headers=ROOT, json={"amount": 320})
    released = client.post(_one("job-2", "release", BOBS), headers=ROOT)

    assert [r.status_code for r in (reserved, again, listed, read, settled, released)] == [
        201,
        200,
        200,
        200,
        200,
        200,
    ]
    assert (reserved.json()["subject"], reserved.json()["token_held"]) == ("bob", 300)
    assert again.json()["replayed"] is True
    assert [h["hold_id"] for h in listed.json()["holds"]] == ["job-1", "job-2"]
    assert (listed.json()["subject"], listed.json()["token_held"]) == ("bob", 400)
    assert (read.json()["status"], read.json()["subject"]) == ("open", "bob")
    assert (settled.json()["settled"], settled.json()["token_used"]) == (320, 320)
    assert released.json()["status"] == "released"
    bobs_own = client.get("/api/tokens/usage", headers=BOB).json()
    assert (bobs_own["token_used"], bobs_own["token_held"]) == (320, 0)
    assert client.get("/api/tokens/usage", headers=ROOT).json()["token_used"] == 0


def test_an_admin_and_the_user_close_the_same_hold_once(client: TestClient) -> None:
    client.post(HOLDS, headers=BOB, json={"amount": 300, "hold_id": "job-1"})

    by_admin = client.post(_one("job-1", "settle", BOBS), headers=ROOT, json={"amount": 200})
    by_bob = client.post(_one("job-1", "settle"), headers=BOB, json={"amount": 200})
    conflict = client.post(_one("job-1", "release"), headers=BOB)

    assert (by_admin.status_code, by_bob.status_code) == (200, 200)
    assert by_bob.json() == {**by_admin.json(), "replayed": True}
    assert (conflict.status_code, conflict.json()["status"]) == (409, "settled")
    assert client.get("/api/tokens/usage", headers=BOB).json()["token_used"] == 200


def test_an_admin_reading_an_unknown_hold_gets_404(client: TestClient) -> None:
    response = client.get(_one("nope", prefix=BOBS), headers=ROOT)

    assert (response.status_code, response.json()["error"]) == (404, "hold not found")


def test_an_admin_reserve_beyond_what_remains_is_402(client: TestClient) -> None:
    response = client.post(BOBS, headers=ROOT, json={"amount": 1001})

    assert (response.status_code, response.json()["remaining"]) == (402, 1000)


@pytest.mark.parametrize(
    "route",
    [
        ("POST", "", {"amount": 1, "hold_id": "new"}),
        ("GET", "", None),
        ("GET", "/job-1", None),
        ("POST", "/job-1/settle", {"amount": 1}),
        ("POST", "/job-1/release", None),
    ],
    ids=["reserve", "list", "read", "settle", "release"],
)
@pytest.mark.parametrize("whose", ["bob", "alice"], ids=["another", "own"])
def test_the_admin_hold_routes_are_403_for_a_user_and_change_nothing(
    client: TestClient, store: InMemoryStore, route: tuple[str, str, object], whose: str
) -> None:
    method, action, body = route
    client.post(
        f"/api/admin/accounts/{whose}/holds", headers=ROOT, json={"amount": 300, "hold_id": "job-1"}
    )
    before = _state(store, whose)

    response = client.request(
        method, f"/api/admin/accounts/{whose}/holds{action}", headers=ALICE, json=body
    )

    assert response.status_code == 403
    assert (response.json()["error"], response.json()["reason"]) == ("forbidden", "admin_only")
    assert "token_used" not in response.json()
    assert _state(store, whose) == before


def test_a_host_app_answers_the_hold_errors_of_its_own_routes_as_tokenplans_does(
    service: TokenService,
) -> None:
    alice = Principal("alice")
    service.reserve(alice, 10, hold_id="job")
    service.release(alice, "job")

    async def settle_job(_request: Request) -> Response:
        await run_in_threadpool(service.settle, alice, "job", 5)
        raise AssertionError("a released hold was settled")

    async def read_missing(_request: Request) -> Response:
        await run_in_threadpool(service.hold, alice, "missing")
        raise AssertionError("a missing hold was found")

    host = Starlette(
        routes=[
            Route("/settle", settle_job, methods=["POST"]),
            Route("/missing", read_missing, methods=["GET"]),
        ]
    )
    install_error_handlers(host)
    client = TestClient(host)

    conflict = client.post("/settle")
    missing = client.get("/missing")

    assert conflict.status_code == 409
    assert {key: conflict.json()[key] for key in ("error", "hold_id", "status")} == {
        "error": "hold conflict",
        "hold_id": "job",
        "status": "released",
    }
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "hold not found", "hold_id": "missing"},
    )
