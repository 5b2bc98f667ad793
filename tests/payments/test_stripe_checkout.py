"""The Stripe gateway against a local stand-in of Stripe's Checkout Sessions API (a real
HTTP server on 127.0.0.1, reached through ``api_url``): the request it sends (form
fields, amount and currency from the catalog, idempotency key, metadata, reference),
the one retry under the same key, resuming an open session, and clear errors."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from tokenplans import PaymentService, PlanCatalog, Principal, TokenService
from tokenplans.ports import GatewayError
from tokenplans.testing import InMemoryStore, SettableClock
from tokenplans_adapters.stripe import StripeGateway

KEY = "sk_test_stand_in_key"
WEBHOOK_SECRET = "whsec_stand_in"


class StandIn(ThreadingHTTPServer):
    """Stripe's ``/v1/checkout/sessions``: records each request, answers like Stripe
    (a session per idempotency key), or with ``fail_next`` statuses first."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.fail_next: list[tuple[int, dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, format: str, *args: object) -> None:
        del format, args

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, form: dict[str, str]) -> None:
        self.server.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "form": form}
        )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length).decode()
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        self._record(form)
        if self.server.fail_next:
            self._answer(*self.server.fail_next.pop(0))
            return
        key = self.headers["Idempotency-Key"]
        session_id = self.server.by_key.get(key) or f"cs_test_{len(self.server.sessions):04d}"
        self.server.by_key[key] = session_id
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_total": int(form["line_items[0][price_data][unit_amount]"]),
            "currency": form["line_items[0][price_data][currency]"],
            "client_reference_id": form["client_reference_id"],
            "status": "open",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}#fid",
        }
        self.server.sessions[session_id] = session
        self._answer(200, session)

    def do_GET(self) -> None:
        self._record({})
        session = self.server.sessions.get(self.path.rsplit("/", 1)[1])
        if session is None:
            self._answer(404, {"error": {"message": "No such checkout.session"}})
        else:
            self._answer(200, session)


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def gateway(stand_in: StandIn) -> Iterator[StripeGateway]:
    with StripeGateway(
        KEY,
        [WEBHOOK_SECRET],
        success_url="https://app.example/paid",
        cancel_url="https://app.example/plans",
        api_url=stand_in.url,
        timeout=30,
    ) as made:
        yield made


def _payments(gateway: StripeGateway) -> PaymentService:
    store = InMemoryStore()
    tokens = TokenService(store, PlanCatalog.default(), SettableClock())
    return PaymentService(store, store, tokens.catalog, tokens.clock, gateway)


def test_an_order_creates_a_checkout_session_priced_by_the_catalog(
    stand_in: StandIn, gateway: StripeGateway
) -> None:
    payments = _payments(gateway)
    premium = payments.catalog.get("premium")

    checkout = payments.create_order(Principal("alice"), "premium")

    (request,) = stand_in.requests
    form, headers = request["form"], request["headers"]
    payment_id = checkout.payment.id
    assert (request["method"], request["path"]) == ("POST", "/v1/checkout/sessions")
    assert form == {
        "mode": "payment",
        "client_reference_id": payment_id,
        "success_url": "https://app.example/paid",
        "cancel_url": "https://app.example/plans",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": premium.currency.lower(),
        "line_items[0][price_data][unit_amount]": str(premium.price),
        "line_items[0][price_data][product_data][name]": "premium",
        "metadata[payment_id]": payment_id,
        "metadata[subject]": "alice",
        "metadata[plan]": "premium",
        "payment_intent_data[metadata][payment_id]": payment_id,
        "payment_intent_data[metadata][subject]": "alice",
        "payment_intent_data[metadata][plan]": "premium",
    }
    assert headers["Idempotency-Key"] == f"tokenplans-order-{payment_id}"
    assert headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert checkout.order_id == "cs_test_0000"
    assert checkout.public == {"checkout_url": "https://checkout.stripe.com/c/pay/cs_test_0000#fid"}
    assert checkout.payment.provider == "stripe"


def test_each_order_has_its_own_idempotency_key(stand_in: StandIn, gateway: StripeGateway) -> None:
    payments = _payments(gateway)
    payments.create_order(Principal("alice"), "premium")
    payments.create_order(Principal("bob"), "premium")

    keys = [r["headers"]["Idempotency-Key"] for r in stand_in.requests]
    assert len(set(keys)) == 2


def test_a_server_error_is_retried_once_under_the_same_key(
    stand_in: StandIn, gateway: StripeGateway
) -> None:
    stand_in.fail_next.append((500, {"error": {"message": "try again"}}))

    started = gateway.start_checkout(
        payment_id="tp_retry", subject="alice", plan_id="standard", amount=2900, currency="INR"
    )

    first, second = stand_in.requests
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]
    assert first["form"] == second["form"]
    assert len(stand_in.sessions) == 1
    assert started.order_id in stand_in.sessions


@pytest.mark.parametrize(
    ("failures", "message"),
    [
        ([(400, {"error": {"message": "Invalid currency: xyz"}})], "refused.*Invalid currency"),
        ([(500, {}), (502, {})], "HTTP 502"),
        ([(429, {})], "rate limiting"),
        ([(200, {"object": "checkout.session"})], "without a checkout session id"),
    ],
)
def test_refusals_and_failures_are_gateway_errors_that_say_why(
    stand_in: StandIn, gateway: StripeGateway, failures: list[tuple[int, Any]], message: str
) -> None:
    stand_in.fail_next.extend(failures)

    with pytest.raises(GatewayError, match=message):
        gateway.start_checkout(
            payment_id="tp_x", subject="alice", plan_id="standard", amount=2900, currency="INR"
        )


def test_an_unreachable_stripe_is_a_gateway_error() -> None:
    with (
        StripeGateway(
            KEY, [WEBHOOK_SECRET], success_url="https://a.example/", api_url="http://127.0.0.1:9"
        ) as gateway,
        pytest.raises(GatewayError, match="cannot reach Stripe"),
    ):
        gateway.start_checkout(
            payment_id="tp_x", subject="alice", plan_id="standard", amount=2900, currency="INR"
        )


def test_an_open_order_resumes_its_session_and_a_closed_one_says_so(
    stand_in: StandIn, gateway: StripeGateway
) -> None:
    payments = _payments(gateway)
    first = payments.create_order(Principal("alice"), "premium")

    again = payments.create_order(Principal("alice"), "premium")

    assert again.reused
    assert again.order_id == first.order_id
    assert again.public == first.public
    assert stand_in.requests[-1]["method"] == "GET"
    assert stand_in.requests[-1]["path"] == f"/v1/checkout/sessions/{first.order_id}"
    stand_in.sessions[first.order_id] |= {"status": "complete", "url": None}
    with pytest.raises(GatewayError, match="no longer open"):
        payments.create_order(Principal("alice"), "premium")
    assert len(stand_in.sessions) == 1


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ValueError, match="sk_"):
        StripeGateway("pk_test_public", [WEBHOOK_SECRET], success_url="https://a.example/")
    with pytest.raises(ValueError, match="webhook"):
        StripeGateway(KEY, [], success_url="https://a.example/")
    with pytest.raises(ValueError, match="non-empty"):
        StripeGateway(KEY, [""], success_url="https://a.example/")
    gateway = StripeGateway(KEY, [WEBHOOK_SECRET], success_url="https://a.example/")
    with gateway:
        assert KEY not in repr(gateway)
