"""Credit lots over HTTP: the admin grant's lot fields, the usage answer's lots, void, and
each refusal as its JSON error (docs/credit-lots.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from http_support import ALICE, ROOT, build_app
from starlette.testclient import TestClient

from tokenplans.testing import SettableClock

GRANT = "/api/admin/accounts/alice/grant"


def test_a_granted_lot_shows_in_the_usage_answer_and_a_void_forfeits_it() -> None:
    client = TestClient(build_app(clock=SettableClock(datetime(2026, 1, 15, 12, tzinfo=UTC))))
    assert "lots" not in client.get("/api/tokens/usage", headers=ALICE).json()

    granted = client.post(
        GRANT,
        headers=ROOT,
        json={"amount": 500, "expires": "never", "priority": 7, "lot_id": "welcome"},
    )
    assert granted.status_code == 200
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 1200})

    usage = client.get("/api/tokens/usage", headers=ALICE).json()
    assert (usage["token_quota"], usage["token_used"], usage["remaining"]) == (1500, 1200, 300)
    assert [
        (lot["lot_id"], lot["source"], lot["amount"], lot["used"], lot["remaining"])
        for lot in usage["lots"]
    ] == [("plan", "plan", 1000, 1000, 0), ("welcome", "promotional", 500, 200, 300)]
    assert usage["lots"][1]["expires_at"] is None
    ledger = client.get("/api/tokens/ledger", headers=ALICE).json()["entries"]
    assert ledger[0]["draws"] == [
        {"lot_id": "plan", "amount": 1000},
        {"lot_id": "welcome", "amount": 200},
    ]

    voided = client.post("/api/admin/accounts/alice/lots/welcome/void", headers=ROOT)
    assert voided.status_code == 200
    # Its 300 free are forfeited; holding nothing, it leaves the sums with its 200 used.
    assert (voided.json()["token_quota"], voided.json()["token_used"]) == (1000, 1000)
    assert "lots" not in voided.json()
    # Gone from the account (it held nothing), it is no lot to void any more.
    again = client.post("/api/admin/accounts/alice/lots/welcome/void", headers=ROOT)
    assert again.status_code == 404


def test_lot_refusals_are_json_errors_and_change_nothing() -> None:
    client = TestClient(build_app(clock=SettableClock(datetime(2026, 1, 15, 12, tzinfo=UTC))))
    client.post(GRANT, headers=ROOT, json={"amount": 5, "lot_id": "a", "expires": "never"})
    before = client.get("/api/admin/accounts/alice", headers=ROOT).json()

    conflict = client.post(GRANT, headers=ROOT, json={"amount": 6, "lot_id": "a"})
    past = client.post(GRANT, headers=ROOT, json={"amount": 6, "expires": "2026-01-01T00:00:00Z"})
    garbled = client.post(GRANT, headers=ROOT, json={"amount": 6, "expires": "soon"})
    priority = client.post(GRANT, headers=ROOT, json={"amount": 6, "priority": 1001})
    unknown = client.post("/api/admin/accounts/alice/lots/nope/void", headers=ROOT)
    by_user = client.post("/api/admin/accounts/alice/lots/a/void", headers=ALICE)

    assert (conflict.status_code, conflict.json()["error"]) == (409, "lot conflict")
    assert (past.status_code, garbled.status_code, priority.status_code) == (422, 422, 422)
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "lot not found", "lot_id": "nope"},
    )
    assert by_user.status_code == 403
    assert client.get("/api/admin/accounts/alice", headers=ROOT).json() == before
