"""The Orders API client against a local stand-in for Razorpay (``http.server`` in a
thread on 127.0.0.1): what it sends, and a clear :class:`GatewayError` for every way the
call can go wrong, with no payment record left behind in a wrong state."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import pytest
from payments_support import payment_service

from tokenplans import GatewayError, PaymentService, PaymentStatus, Principal, TokenService
from tokenplans_adapters.razorpay import RazorpayGateway

KEY_ID = "rzp_test_1DP5mmOlF5G5ag"
KEY_SECRET = "thisisasecret"

Reply = tuple[int, bytes]


@attrs.define
class FakeRazorpay:
    """Records each request and answers with ``reply(request_json)``."""

    url: str
    requests: list[dict[str, Any]] = attrs.field(factory=list)
    reply: Callable[[dict[str, Any]], Reply] = lambda order: (200, b"{}")


def _order_created(order: dict[str, Any]) -> Reply:
    body = {
        "id": "order_" + uuid.uuid4().hex[:14],  # unique: the test databases are shared
        "entity": "order",
        "amount": order["amount"],
        "amount_paid": 0,
        "amount_due": order["amount"],
        "currency": order["currency"],
        "receipt": order["receipt"],
        "status": "created",
        "attempts": 0,
        "notes": order["notes"],
        "created_at": 1582628071,
    }
    return 200, json.dumps(body).encode()


@pytest.fixture
def razorpay_server() -> Iterator[FakeRazorpay]:
    fake = FakeRazorpay(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            order = json.loads(self.rfile.read(length) or b"{}")
            fake.requests.append(
                {"path": self.path, "auth": self.headers.get("Authorization"), "json": order}
            )
            status, body = fake.reply(order)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up (the timeout test)
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def razorpay(razorpay_server: FakeRazorpay) -> Iterator[RazorpayGateway]:
    with RazorpayGateway(
        KEY_ID, KEY_SECRET, ["whsec"], api_url=razorpay_server.url, timeout=0.2
    ) as gateway:
        yield gateway


@pytest.fixture
def paying(tokens: TokenService, razorpay: RazorpayGateway) -> PaymentService:
    return payment_service(tokens, razorpay)


def test_an_order_is_created_with_basic_auth_paise_receipt_and_notes(
    razorpay_server: FakeRazorpay, paying: PaymentService, alice: Principal
) -> None:
    razorpay_server.reply = _order_created

    checkout = paying.create_order(alice, "standard")

    assert checkout.order_id.startswith("order_")
    assert checkout.public["key_id"] == KEY_ID
    [request] = razorpay_server.requests
    assert request["path"] == "/v1/orders"
    credentials = base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
    assert request["auth"] == f"Basic {credentials}"
    assert request["json"] == {
        "amount": 2900,
        "currency": "INR",
        "receipt": checkout.payment.id,
        "notes": {"subject": alice.subject, "plan": "standard", "payment_id": checkout.payment.id},
    }
    stored = paying.tokens.store.find_payment(checkout.order_id)
    assert stored is not None
    assert stored.status is PaymentStatus.CREATED


def _error(status: int, code: str, description: str) -> Callable[[dict[str, Any]], Reply]:
    body = {
        "error": {
            "code": code,
            "description": description,
            "source": "business",
            "step": "payment_initiation",
            "reason": "input_validation_failed",
            "metadata": {},
        }
    }
    return lambda order: (status, json.dumps(body).encode())


def _slow(order: dict[str, Any]) -> Reply:
    time.sleep(0.8)  # four times the client's timeout
    return _order_created(order)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param(
            _error(400, "BAD_REQUEST_ERROR", "The amount must be atleast INR 1.00"),
            r"refused the order \(HTTP 400\): The amount must be atleast INR 1.00",
            id="400",
        ),
        pytest.param(
            _error(401, "BAD_REQUEST_ERROR", "Authentication failed"),
            r"refused the order \(HTTP 401\): Authentication failed",
            id="401",
        ),
        pytest.param(
            lambda order: (400, b"<html>Bad Request</html>"),
            r"refused the order \(HTTP 400\): Bad Request",
            id="400 without a JSON body",
        ),
        pytest.param(
            _error(500, "SERVER_ERROR", "We are facing some trouble"),
            r"failed to create the order \(HTTP 500\)",
            id="500",
        ),
        pytest.param(
            lambda order: (502, b"<html>Bad Gateway</html>"),
            r"failed to create the order \(HTTP 502\)",
            id="502",
        ),
        pytest.param(
            lambda order: (200, b"{not json"), r"body that is not JSON", id="malformed JSON"
        ),
        pytest.param(lambda order: (200, b"[]"), r"without an order id", id="JSON not an object"),
        pytest.param(
            lambda order: (200, b'{"entity": "order"}'), r"without an order id", id="no order id"
        ),
        pytest.param(
            lambda order: (200, json.dumps({"id": "order_X", "amount": 1}).encode()),
            r"different amount",
            id="another amount",
        ),
        pytest.param(_slow, r"did not answer within 0.2 s", id="timeout"),
    ],
)
def test_an_order_razorpay_does_not_create_is_a_clear_error_and_leaves_no_payment(
    razorpay_server: FakeRazorpay,
    paying: PaymentService,
    alice: Principal,
    reply: Callable[[dict[str, Any]], Reply],
    message: str,
) -> None:
    razorpay_server.reply = reply

    with pytest.raises(GatewayError, match=message) as failed:
        paying.create_order(alice, "premium")

    assert KEY_SECRET not in str(failed.value)
    assert paying.payments(alice) == []
    assert paying.tokens.store.load(alice.subject) is None


def test_an_unreachable_razorpay_is_a_clear_error_and_leaves_no_payment(
    tokens: TokenService, alice: Principal
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with RazorpayGateway(KEY_ID, KEY_SECRET, api_url=url, timeout=2) as gateway:
        paying = payment_service(tokens, gateway)
        with pytest.raises(GatewayError, match="cannot reach Razorpay"):
            paying.create_order(alice, "premium")

    assert paying.payments(alice) == []


def test_after_a_failed_order_the_next_one_succeeds(
    razorpay_server: FakeRazorpay, paying: PaymentService, alice: Principal
) -> None:
    razorpay_server.reply = _error(500, "SERVER_ERROR", "trouble")
    with pytest.raises(GatewayError):
        paying.create_order(alice, "premium")
    razorpay_server.reply = _order_created

    checkout = paying.create_order(alice, "premium")

    assert [p.order_id for p in paying.payments(alice)] == [checkout.order_id]
