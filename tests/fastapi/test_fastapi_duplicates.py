"""A duplicate request never reaches the endpoint, so the model is never called twice: the
dependency answers it first (409 ``request in progress`` or ``already processed``), and a
duplicate never closes the first request's hold. A streaming endpoint reports as it goes
and pays for what it delivered, however the request ends."""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at run
# time, and the ones below name locals (`tp`).

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from fastapi_support import (
    ChatRequest,
    bearer,
    build_host,
    chat_cost,
    idempotency_key,
    stream_then_hang_up,
)

from tokenplans import HoldStatus, Principal
from tokenplans.aio import AsyncReservation

KEY = {"Idempotency-Key": "chat-3f9a1c27"}


def _usage(client: TestClient | httpx.Client, subject: str = "alice") -> dict[str, Any]:
    answer: dict[str, Any] = client.get("/billing/api/tokens/usage", headers=bearer(subject)).json()
    return answer


# -- charge(idempotency_key=...) ---------------------------------------------------------


def test_twenty_requests_with_one_key_run_the_endpoint_once_and_charge_once() -> None:
    host, _ = build_host()
    client = TestClient(host)

    answers = [
        client.post(
            "/chat", headers={**bearer("alice"), **KEY}, json={"prompt": f"p{n}", "max_tokens": 50}
        )
        for n in range(20)
    ]

    assert host.state.ran == ["chat"]
    assert answers[0].status_code == 200
    assert {a.status_code for a in answers[1:]} == {409}
    assert answers[1].json() == {
        "error": "already processed",
        "idempotency_key": KEY["Idempotency-Key"],
        "status": "debited",
        "amount": 50,
        "message": f"request {KEY['Idempotency-Key']!r} was already processed",
    }
    assert _usage(client)["token_used"] == 50


def test_a_host_that_keeps_its_responses_opts_in_to_running_on_a_replay() -> None:
    host, tp = build_host()

    @host.post("/cached-chat")
    async def cached_chat(
        receipt: Annotated[
            Any, Depends(tp.charge(40, idempotency_key=idempotency_key, on_replay="call"))
        ],
    ) -> dict[str, Any]:
        host.state.ran.append("cached-chat")
        return {"replayed": receipt.replayed}

    client = TestClient(host)
    first = client.post("/cached-chat", headers={**bearer("alice"), **KEY})
    again = client.post("/cached-chat", headers={**bearer("alice"), **KEY})

    assert (first.json(), again.json()) == ({"replayed": False}, {"replayed": True})
    assert _usage(client)["token_used"] == 40


def test_an_unknown_replay_policy_is_refused_when_the_route_is_declared() -> None:
    _, tp = build_host()
    with pytest.raises(ValueError, match="on_replay"):
        tp.charge(1, on_replay="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_replay"):
        tp.hold(1, on_replay="again")  # type: ignore[arg-type]


# -- hold(hold_id=...) -------------------------------------------------------------------


def _held_host() -> tuple[FastAPI, asyncio.Event, list[str]]:
    """``/metered`` holds ``max_tokens`` under the ``Idempotency-Key``, waits for ``gate``
    when the prompt says so (a model call in flight), and settles 10 per prompt letter."""
    host, tp = build_host()
    gate = asyncio.Event()
    calls: list[str] = []

    @host.post("/metered")
    async def metered(
        body: ChatRequest,
        reservation: Annotated[
            AsyncReservation, Depends(tp.hold(chat_cost, hold_id=idempotency_key))
        ],
    ) -> dict[str, Any]:
        calls.append(body.prompt)  # the model call
        if body.prompt.startswith("slow"):
            await gate.wait()
        hold = await reservation.settle(10 * len(body.prompt))
        return {"settled": hold.settled}

    return host, gate, calls


def test_a_duplicate_while_the_first_is_in_flight_is_409_and_leaves_its_hold_alone() -> None:
    host, gate, calls = _held_host()

    async def scenario() -> tuple[httpx.Response, httpx.Response, dict[str, Any]]:
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
            headers = {**bearer("alice"), **KEY}
            body = {"prompt": "slow call", "max_tokens": 300}
            first = asyncio.create_task(client.post("/metered", headers=headers, json=body))
            while not calls:  # the first request is inside the model call
                await asyncio.sleep(0.01)
            duplicate = await client.post("/metered", headers=headers, json=body)
            during = (await client.get("/billing/api/tokens/usage", headers=bearer("alice"))).json()
            gate.set()
            return await first, duplicate, during

    first, duplicate, during = asyncio.run(scenario())

    assert calls == ["slow call"]  # the model ran once
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "request in progress"
    assert duplicate.json()["hold_id"] == KEY["Idempotency-Key"]
    assert 1 <= int(duplicate.headers["Retry-After"]) <= 5
    assert during["token_held"] == 300  # the duplicate did not release the first's hold
    assert (first.status_code, first.json()) == (200, {"settled": 90})
    usage = _usage(TestClient(host))
    assert (usage["token_used"], usage["token_held"]) == (90, 0)


def test_a_duplicate_after_the_first_finished_is_already_processed_and_runs_nothing() -> None:
    host, _, calls = _held_host()
    client = TestClient(host)
    headers = {**bearer("alice"), **KEY}

    first = client.post("/metered", headers=headers, json={"prompt": "hello", "max_tokens": 300})
    retries = [
        client.post("/metered", headers=headers, json={"prompt": prompt, "max_tokens": 300})
        for prompt in ("hello", "a different prompt, same estimate")
    ]

    assert first.json() == {"settled": 50}
    assert calls == ["hello"]
    for retry in retries:
        assert retry.status_code == 409
        assert retry.json() == {
            "error": "already processed",
            "hold_id": KEY["Idempotency-Key"],
            "status": "settled",
            "settled": 50,
            "message": f"request {KEY['Idempotency-Key']!r} was already processed",
        }
    assert _usage(client)["token_used"] == 50


def test_the_same_key_from_two_callers_names_two_holds() -> None:
    """A user cannot pre-claim the id its back end will use: ids are scoped per caller."""
    host, _, calls = _held_host()
    client = TestClient(host)

    mine = client.post(
        "/metered", headers={**bearer("alice"), **KEY}, json={"prompt": "ab", "max_tokens": 100}
    )
    backend = client.post(
        "/billing/api/admin/accounts/alice/holds",
        headers=bearer("backend", admin=True),
        json={"amount": 100, "hold_id": KEY["Idempotency-Key"]},
    )

    assert mine.json() == {"settled": 20}
    assert backend.status_code == 201
    assert (backend.json()["status"], backend.json()["placed_by"]) == ("open", "backend")
    assert calls == ["ab"]


# -- streaming ---------------------------------------------------------------------------

CHUNKS = 5
PER_CHUNK = 30


def _streaming_host() -> tuple[FastAPI, list[int]]:
    """``/stream`` holds 300, streams five chunks and reports 30 credits per chunk sent."""
    host, tp = build_host()
    sent: list[int] = []

    @host.post("/stream")
    async def stream(
        reservation: Annotated[AsyncReservation, Depends(tp.hold(300))],
    ) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for n in range(1, CHUNKS + 1):
                reservation.report((n) * PER_CHUNK)  # what the model produced so far
                sent.append(n)
                yield f"chunk {n}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    return host, sent


def test_a_stream_read_to_the_end_is_settled_at_what_it_reported() -> None:
    host, _ = _streaming_host()
    client = TestClient(host)

    answer = client.post("/stream", headers=bearer("alice"))

    assert answer.text.count("chunk") == CHUNKS
    usage = _usage(client)
    assert (usage["token_used"], usage["token_held"]) == (CHUNKS * PER_CHUNK, 0)


def test_a_client_that_hangs_up_before_the_last_chunk_pays_for_what_it_got() -> None:
    host, sent = _streaming_host()

    got = asyncio.run(stream_then_hang_up(host, "/stream", bearer("alice"), after_chunks=2))

    usage = _usage(TestClient(host))
    assert [chunk.decode() for chunk in got] == ["chunk 1\n", "chunk 2\n"]
    assert max(sent) < CHUNKS  # the stream really was cut short
    assert usage["token_held"] == 0
    assert usage["token_used"] == max(sent) * PER_CHUNK  # what it reported, not released


def test_a_duplicate_never_reports_and_a_report_takes_one_form() -> None:
    host, tp = build_host()
    errors: list[str] = []

    @host.post("/report")
    async def report(
        reservation: Annotated[AsyncReservation, Depends(tp.hold(10, on_replay="call"))],
    ) -> dict[str, Any]:
        try:
            reservation.report()
        except ValueError as refused:
            errors.append(str(refused))
        return {"replayed": reservation.replayed}

    client = TestClient(host)
    assert client.post("/report", headers=bearer("alice")).json() == {"replayed": False}
    assert errors == ["report takes an amount or a usage: exactly one of them"]
    assert _usage(client)["token_held"] == 0  # no report: released


# -- the library's holding() -------------------------------------------------------------


def _service_and_user() -> tuple[Any, Principal]:
    _, tp = build_host()
    return tp.service.sync, Principal("alice")


def test_holding_refuses_a_duplicate_before_the_block_and_leaves_the_first_hold() -> None:
    from tokenplans import AlreadyProcessedError, RequestInProgressError  # noqa: PLC0415

    service, alice = _service_and_user()
    ran: list[str] = []
    with service.holding(alice, 100, hold_id="call-7c1e") as first:
        with (
            pytest.raises(RequestInProgressError) as busy,
            service.holding(alice, 100, hold_id="call-7c1e"),
        ):
            ran.append("duplicate")
        assert busy.value.retry_after_seconds >= 1
        assert first.hold.is_open  # the duplicate closed nothing
        first.settle(60)
    with pytest.raises(AlreadyProcessedError), service.holding(alice, 100, hold_id="call-7c1e"):
        ran.append("after")
    assert ran == []
    assert service.usage(alice).token_used == 60


def test_holding_with_on_replay_call_runs_the_block_and_never_closes_the_first() -> None:
    service, alice = _service_and_user()
    first = service.reserve(alice, 100, hold_id="call-42aa")
    with service.holding(alice, 100, hold_id="call-42aa", on_replay="call") as replay:
        assert replay.replayed
    assert service.hold(alice, "call-42aa") == first  # still open, untouched
    service.settle(alice, "call-42aa", 30)
    with service.holding(alice, 100, hold_id="call-42aa", on_replay="call") as done:
        assert (done.replayed, done.hold.status) == (True, HoldStatus.SETTLED)
    assert service.usage(alice).token_used == 30


def test_holding_settles_its_last_report_when_the_block_raises() -> None:
    service, alice = _service_and_user()

    def stream() -> Iterator[int]:
        with service.holding(alice, 300) as reservation:
            for n in range(1, 4):
                reservation.report(n * 25)
                yield n
            raise ConnectionResetError("the client hung up")

    with pytest.raises(ConnectionResetError):
        list(stream())
    assert (service.usage(alice).token_used, service.usage(alice).token_held) == (75, 0)


# -- holds belong to their caller --------------------------------------------------------


def test_a_user_cannot_close_or_see_the_holds_its_back_end_placed() -> None:
    host, _ = build_host()
    client = TestClient(host)
    backend = bearer("backend", admin=True)
    placed = client.post(
        "/billing/api/admin/accounts/alice/holds",
        headers=backend,
        json={"amount": 200, "hold_id": "job-5e0b"},
    )
    assert placed.status_code == 201

    tries = [
        client.post(
            "/billing/api/tokens/holds/job-5e0b/settle", headers=bearer("alice"), json={"amount": 0}
        ),
        client.post("/billing/api/tokens/holds/job-5e0b/release", headers=bearer("alice")),
        client.get("/billing/api/tokens/holds/job-5e0b", headers=bearer("alice")),
    ]
    listed = client.get("/billing/api/tokens/holds", headers=bearer("alice")).json()

    assert [t.status_code for t in tries] == [404, 404, 404]
    assert listed["holds"] == []
    assert listed["token_held"] == 200  # held all the same
    settled = client.post(
        "/billing/api/admin/accounts/alice/holds/job-5e0b/settle",
        headers=backend,
        json={"amount": 150},
    )
    assert (settled.status_code, settled.json()["settled"]) == (200, 150)


def test_a_user_pre_claiming_an_id_does_not_make_the_back_end_reserve_look_done() -> None:
    host, _ = build_host()
    client = TestClient(host)
    claimed = client.post(
        "/billing/api/tokens/holds", headers=bearer("alice"), json={"amount": 1, "hold_id": "job-1"}
    )
    client.post(
        "/billing/api/tokens/holds/job-1/settle", headers=bearer("alice"), json={"amount": 0}
    )

    backend = client.post(
        "/billing/api/admin/accounts/alice/holds",
        headers=bearer("backend", admin=True),
        json={"amount": 300, "hold_id": "job-1"},
    )

    assert claimed.status_code == 201
    assert backend.status_code == 201  # a fresh hold of its own, really held
    assert (backend.json()["status"], backend.json()["token_held"]) == ("open", 300)


def test_reserving_the_id_of_a_closed_hold_is_409_already_processed() -> None:
    host, _ = build_host()
    client = TestClient(host)
    holds = "/billing/api/tokens/holds"
    client.post(holds, headers=bearer("alice"), json={"amount": 100, "hold_id": "call-9"})
    client.post(f"{holds}/call-9/settle", headers=bearer("alice"), json={"amount": 70})

    again = client.post(holds, headers=bearer("alice"), json={"amount": 100, "hold_id": "call-9"})

    assert again.status_code == 409
    assert again.json()["error"] == "already processed"
    assert (again.json()["status"], again.json()["settled"]) == ("settled", 70)
    assert _usage(client)["token_used"] == 70
