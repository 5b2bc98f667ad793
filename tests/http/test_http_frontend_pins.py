"""The answers the original service's frontend reads, pinned byte for byte.

Its frontend reads ``GET /api/tokens/usage`` and ``POST /api/tokens/set-plan`` (and the
admin set-plan): their field names, order and formats must not move while the code
around them is reshaped. A change here is a change every deployed frontend sees.
"""

from __future__ import annotations

from datetime import UTC, datetime

from http_support import ALICE, ROOT
from starlette.testclient import TestClient

from tokenplans.testing import SettableClock

NOON = datetime(2026, 1, 15, 12, tzinfo=UTC)


def test_usage_is_byte_for_byte_what_the_frontend_reads(
    client: TestClient, clock: SettableClock
) -> None:
    clock.set(NOON)
    client.post("/api/tokens/consume", headers=ALICE, json={"amount": 120})

    answer = client.get("/api/tokens/usage", headers=ALICE)

    assert answer.headers["content-type"] == "application/json"
    assert answer.content == (
        b'{"plan":"basic","token_quota":1000,"token_used":120,"remaining":880,'
        b'"plan_end_at":null,"period_start":"2026-01-01T00:00:00Z",'
        b'"period_end":"2026-02-01T00:00:00Z","token_held":0,"subject":"alice",'
        b'"features":[]}'
    )


def test_set_plan_is_byte_for_byte_what_the_frontend_reads(
    client: TestClient, clock: SettableClock
) -> None:
    clock.set(NOON)
    client.post("/api/admin/accounts/alice/set-plan", headers=ROOT, json={"plan": "premium"})

    down = client.post("/api/tokens/set-plan", headers=ALICE, json={"plan": "standard"})
    up = client.post("/api/admin/accounts/alice/set-plan", headers=ROOT, json={"plan": "premium"})

    assert down.content == (
        b'{"status":"ok","message":"downgraded to standard","plan":"standard",'
        b'"token_quota":10000,"token_used":0,"remaining":10000,'
        b'"plan_end_at":"2026-02-14T12:00:00Z","period_start":"2026-01-15T12:00:00Z",'
        b'"period_end":"2026-02-14T12:00:00Z","token_held":0,"subject":"alice"}'
    )
    assert up.content == (
        b'{"status":"ok","message":"upgraded to premium with carry-over","plan":"premium",'
        b'"token_quota":60000,"token_used":0,"remaining":60000,'
        b'"plan_end_at":"2026-02-14T12:00:00Z","period_start":"2026-01-15T12:00:00Z",'
        b'"period_end":"2026-02-14T12:00:00Z","token_held":0,"subject":"alice"}'
    )
