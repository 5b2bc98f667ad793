"""Payments owned by their provider: each gateway's routes under ``/api/payments/NAME``,
today's paths as the default provider's, a second provider added with no edit to the
service or the HTTP adapter, and no provider able to confirm another's payment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from tokenplans import (
    PaymentError,
    PaymentService,
    PaymentStatus,
    PlanCatalog,
    Principal,
    TokenService,
)
from tokenplans.ports import GatewayDescription
from tokenplans.testing import InMemoryStore, SettableClock, StaticIdentity
from tokenplans_adapters.http import create_app
from tokenplans_adapters.razorpay import EVENT_ID_HEADER, SIGNATURE_HEADER, OfflineGateway
from tokenplans_adapters.razorpay.protocol import DESCRIPTION

ALICE = {"Authorization": "Bearer alice-token"}
HTTP_ADAPTER = Path(__file__).resolve().parents[2] / "adapters" / "tokenplans_adapters" / "http"


class AcmeGateway(OfflineGateway):
    """A second provider for the tests: the offline gateway under another name, with its
    own secret (so its proofs and webhooks are not Razorpay's)."""

    @property
    def name(self) -> str:
        return "acme"

    @property
    def description(self) -> GatewayDescription:
        return attrs.evolve(DESCRIPTION, title="Acme", max_receipt_length=None)


@pytest.fixture
def razorpay() -> OfflineGateway:
    return OfflineGateway("razorpay-secret")


@pytest.fixture
def acme() -> AcmeGateway:
    return AcmeGateway("acme-secret", key_id="acme_key")


@pytest.fixture
def tokens() -> TokenService:
    return TokenService(InMemoryStore(), PlanCatalog.default(), SettableClock())


@pytest.fixture
def payments(tokens: TokenService, razorpay: OfflineGateway, acme: AcmeGateway) -> PaymentService:
    store = tokens.store
    return PaymentService(
        store,  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        tokens.catalog,
        tokens.clock,
        gateways={"razorpay": razorpay, "acme": acme},
    )


@pytest.fixture
def client(tokens: TokenService, payments: PaymentService) -> Iterator[TestClient]:
    app = create_app(tokens, StaticIdentity({"alice-token": Principal("alice")}), payments=payments)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _usage(client: TestClient) -> dict[str, object]:
    answer: dict[str, object] = client.get("/api/tokens/usage", headers=ALICE).json()
    return answer


def test_each_provider_takes_its_own_orders_on_its_own_routes(
    client: TestClient, acme: AcmeGateway
) -> None:
    order = client.post("/api/payments/acme/order", json={"plan": "premium"}, headers=ALICE)
    assert order.status_code == 200
    assert order.json()["key_id"] == "acme_key"
    order_id = order.json()["order_id"]

    verified = client.post(
        "/api/payments/acme/verify",
        json=acme.checkout_proof(order_id, "pay_AcmePayment0001"),
        headers=ALICE,
    )

    assert verified.status_code == 200, verified.text
    assert verified.json()["payment"]["acme_payment_id"] == "pay_AcmePayment0001"
    assert _usage(client)["plan"] == "premium"
    (listed,) = client.get("/api/payments", headers=ALICE).json()["payments"]
    assert (listed["provider"], listed["status"]) == ("acme", "paid")


def test_today_paths_are_the_default_provider_and_its_own_paths_answer_the_same(
    client: TestClient, razorpay: OfflineGateway
) -> None:
    alias = client.post("/api/payments/order", json={"plan": "standard"}, headers=ALICE).json()
    own = client.post(
        "/api/payments/razorpay/order", json={"plan": "standard"}, headers=ALICE
    ).json()

    # The open order for the same plan at the same provider is handed back: one order.
    assert own == alias
    proof = razorpay.checkout_proof(alias["order_id"], "pay_Razorpay000001")
    first = client.post("/api/payments/razorpay/verify", json=proof, headers=ALICE)
    again = client.post("/api/payments/verify", json=proof, headers=ALICE)
    assert (first.json()["applied"], again.json()["applied"]) == (True, False)
    assert first.json()["payment"] == again.json()["payment"]
    assert client.get("/api/payments", headers=ALICE).json()["payments"][0]["provider"] == (
        "razorpay"
    )


def test_an_open_order_is_reused_only_at_its_own_provider(client: TestClient) -> None:
    at_razorpay = client.post("/api/payments/order", json={"plan": "premium"}, headers=ALICE)
    at_acme = client.post("/api/payments/acme/order", json={"plan": "premium"}, headers=ALICE)

    assert at_razorpay.json()["order_id"] != at_acme.json()["order_id"]
    assert at_acme.json()["key_id"] == "acme_key"
    listed = client.get("/api/payments", headers=ALICE).json()["payments"]
    assert sorted(p["provider"] for p in listed) == ["acme", "razorpay"]


def test_a_genuine_proof_from_another_provider_confirms_nothing(
    client: TestClient, razorpay: OfflineGateway
) -> None:
    """Alice orders at Acme, then posts a proof Razorpay really signed for that order id
    (as one could, from Razorpay's test mode): the order is not Razorpay's, so it does not
    exist there, and she gets no plan without paying Acme."""
    order_id = client.post(
        "/api/payments/acme/order", json={"plan": "premium"}, headers=ALICE
    ).json()["order_id"]
    proof = razorpay.checkout_proof(order_id, "pay_NotPaidAtAcme01")

    for path in ("/api/payments/razorpay/verify", "/api/payments/verify"):
        answer = client.post(path, json=proof, headers=ALICE)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"] == "payment not found"

    assert _usage(client)["plan"] == "basic"
    (listed,) = client.get("/api/payments", headers=ALICE).json()["payments"]
    assert listed["status"] == PaymentStatus.CREATED.value


def test_a_signed_webhook_from_another_provider_is_ignored(
    client: TestClient, razorpay: OfflineGateway, acme: AcmeGateway
) -> None:
    order_id = client.post(
        "/api/payments/acme/order", json={"plan": "premium"}, headers=ALICE
    ).json()["order_id"]
    body, headers = razorpay.webhook_delivery(
        "payment.captured", order_id=order_id, payment_id="pay_NotPaidAtAcme01"
    )

    answer = client.post("/api/payments/razorpay/webhook", content=body, headers=headers)

    assert answer.json() == {"status": "ignored", "event": "payment.captured", "order_id": order_id}
    assert _usage(client)["plan"] == "basic"
    # Acme's own delivery (signed with Acme's secret) applies it.
    body, headers = acme.webhook_delivery(
        "payment.captured", order_id=order_id, payment_id="pay_PaidAtAcme0001"
    )
    assert client.post("/api/payments/acme/webhook", content=body, headers=headers).json()[
        "status"
    ] == ("applied")
    assert _usage(client)["plan"] == "premium"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/payments/stripe/order"),
        ("POST", "/api/payments/stripe/verify"),
        ("POST", "/api/payments/stripe/webhook"),
        ("POST", "/api/payments/RAZORPAY/order"),
    ],
)
def test_an_unknown_provider_is_a_json_404(client: TestClient, method: str, path: str) -> None:
    answer = client.request(method, path, json={"plan": "premium"}, headers=ALICE)

    assert answer.status_code == 404
    assert answer.json() == {"error": "not found"}
    assert client.get("/api/payments", headers=ALICE).json() == {"payments": []}


def test_the_document_describes_every_provider_from_its_gateway(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    validate(document)
    paths, schemas = document["paths"], document["components"]["schemas"]
    for name in ("razorpay", "acme"):
        assert {f"/api/payments/{name}/{action}" for action in ("order", "verify", "webhook")} <= (
            set(paths)
        )
    assert schemas["RazorpayOrder"]["allOf"][1]["properties"]["receipt"]["maxLength"] == 40
    assert "maxLength" not in schemas["AcmeOrder"]["allOf"][1]["properties"]["receipt"]
    assert schemas["AcmeVerifyRequest"]["required"] == list(DESCRIPTION.proof)
    webhook = paths["/api/payments/acme/webhook"]["post"]
    assert webhook["operationId"] == "receiveAcmeWebhook"
    assert [p["name"] for p in webhook["parameters"]] == [
        "X-Razorpay-Signature",
        "X-Razorpay-Event-Id",
    ]
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_a_provider_without_a_browser_proof_has_no_verify_route(tokens: TokenService) -> None:
    class WebhookOnly(OfflineGateway):
        @property
        def description(self) -> GatewayDescription:
            return attrs.evolve(DESCRIPTION, proof={}, proof_example={})

    store = tokens.store
    payments = PaymentService(
        store,  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        tokens.catalog,
        tokens.clock,
        WebhookOnly("secret"),
    )
    app = create_app(tokens, StaticIdentity({"alice-token": Principal("a")}), payments=payments)
    with TestClient(app) as plain:
        document = plain.get("/openapi.json").json()
        answer = plain.post("/api/payments/razorpay/verify", json={}, headers=ALICE)

    assert answer.status_code == 404
    assert "/api/payments/razorpay/verify" not in document["paths"]
    assert "/api/payments/verify" not in document["paths"]
    assert "/api/payments/razorpay/webhook" in document["paths"]


# -- the service ------------------------------------------------------------------


def _service(tokens: TokenService, **gateways: object) -> PaymentService:
    store = tokens.store
    return PaymentService(
        store,  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        tokens.catalog,
        tokens.clock,
        **gateways,  # type: ignore[arg-type]
    )


def test_the_first_gateway_is_the_default_provider(
    payments: PaymentService, razorpay: OfflineGateway
) -> None:
    assert payments.default_provider == "razorpay"
    assert payments.gateway is razorpay
    assert list(payments.gateways) == ["razorpay", "acme"]


def test_an_order_records_its_provider_and_an_unknown_one_is_refused(
    payments: PaymentService,
) -> None:
    alice = Principal("alice")
    assert payments.create_order(alice, "premium").payment.provider == "razorpay"
    assert payments.create_order(alice, "premium", provider="acme").payment.provider == "acme"

    with pytest.raises(PaymentError) as refused:
        payments.create_order(alice, "standard", provider="stripe")
    assert refused.value.reason == "unknown_provider"
    with pytest.raises(PaymentError):
        payments.confirm(alice, {}, provider="stripe")
    with pytest.raises(PaymentError):
        payments.handle_webhook(body=b"{}", headers={}, provider="stripe")


def test_gateways_must_be_given_under_their_own_url_safe_names(
    tokens: TokenService, razorpay: OfflineGateway, acme: AcmeGateway
) -> None:
    with pytest.raises(ValueError, match="under another name"):
        _service(tokens, gateways={"stripe": razorpay})
    with pytest.raises(TypeError):
        _service(tokens, gateway=razorpay, gateways={"razorpay": razorpay})
    with pytest.raises(TypeError):
        _service(tokens)
    with pytest.raises(ValueError, match="at least one"):
        _service(tokens, gateways={})

    class BadName(AcmeGateway):
        @property
        def name(self) -> str:
            return "Acme/Pay"

    with pytest.raises(ValueError, match="lower-case"):
        _service(tokens, gateways={"Acme/Pay": BadName("s")})


# -- the Razorpay adapter describes what it reads -----------------------------------


def test_razorpay_describes_the_fields_and_headers_it_reads(razorpay: OfflineGateway) -> None:
    description = razorpay.description
    proof = razorpay.checkout_proof("order_Q6kVbZ1xNw3Yt9", "pay_Q6kVcA2yOx4Zu0")

    assert list(description.proof) == list(proof) == list(description.proof_example)
    assert razorpay.read_confirmation(description.proof_example).order_id == (
        "order_Q6kVbZ1xNw3Yt9"
    )
    assert list(description.checkout) == list(razorpay.resume_checkout(order_id="o").public)
    assert [h["name"].lower() for h in description.webhook_headers] == [
        SIGNATURE_HEADER,
        EVENT_ID_HEADER,
    ]
    body = json.dumps(description.webhook_example).encode()
    event = razorpay.read_webhook(body=body, headers=razorpay.webhook_headers(body))
    assert event.order_id == "order_Q6kVbZ1xNw3Yt9"


def test_the_http_adapter_names_no_payment_provider() -> None:
    for source in HTTP_ADAPTER.rglob("*.py"):
        text = source.read_text(encoding="utf-8").lower()
        for provider in ("razorpay", "stripe"):
            assert provider not in text, (source, provider)
