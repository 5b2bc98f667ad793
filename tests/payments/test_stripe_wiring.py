"""Stripe in the composition root: its settings (one-line errors for bad ones), both
providers served at once, and ``tokenplans dev pay`` completing a Stripe order through
the ASGI app by a correctly signed event."""

from __future__ import annotations

import shlex
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tokenplans_adapters.jwt_identity import mint_token
from tokenplans_adapters.main.app import build_app, build_gateways
from tokenplans_adapters.main.cli import main
from tokenplans_adapters.main.config import ConfigError, Settings
from tokenplans_adapters.main.dev import DevSecrets, dev_settings, save_dev_secrets
from tokenplans_adapters.razorpay import OfflineGateway
from tokenplans_adapters.sql import upgrade_schema
from tokenplans_adapters.stripe import OfflineStripe, StripeGateway
from tokenplans_adapters.stripe.signatures import signature_header

JWT_SECRET = "a-jwt-secret-that-is-long-enough-for-hs256-0123456789"
STRIPE = {
    "STRIPE_SECRET_KEY": "sk_test_abc",
    "STRIPE_WEBHOOK_SECRET": "whsec_abc",
    "TOKENPLANS_STRIPE_SUCCESS_URL": "https://app.example/paid",
}


def settings(**environ: str) -> Settings:
    return Settings.from_env(environ, env_file=None)


def test_stripe_alone_is_the_only_provider_even_with_a_jwt_secret() -> None:
    gateways = build_gateways(settings(TOKENPLANS_JWT_SECRET=JWT_SECRET, **STRIPE))

    assert list(gateways) == ["stripe"]
    assert isinstance(gateways["stripe"], StripeGateway)
    gateways["stripe"].close()  # type: ignore[attr-defined]


def test_both_providers_at_once_razorpay_first() -> None:
    gateways = build_gateways(
        settings(RAZORPAY_KEY_ID="rzp_test_a", RAZORPAY_KEY_SECRET="s", **STRIPE)
    )

    assert list(gateways) == ["razorpay", "stripe"]
    for gateway in gateways.values():
        gateway.close()  # type: ignore[attr-defined]


def test_without_stripe_settings_nothing_changes() -> None:
    assert list(build_gateways(settings(TOKENPLANS_JWT_SECRET=JWT_SECRET))) == ["razorpay"]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"STRIPE_SECRET_KEY": "sk_test_abc"}, "STRIPE_WEBHOOK_SECRET is not set"),
        ({**STRIPE, "STRIPE_SECRET_KEY": "pk_test_abc"}, "sk_"),
        ({**STRIPE, "TOKENPLANS_STRIPE_SUCCESS_URL": ""}, "TOKENPLANS_STRIPE_SUCCESS_URL"),
        ({**STRIPE, "TOKENPLANS_STRIPE_SUCCESS_URL": "app/paid"}, "http"),
        ({**STRIPE, "TOKENPLANS_STRIPE_CANCEL_URL": "javascript:x"}, "CANCEL_URL"),
        ({**STRIPE, "STRIPE_API_URL": "ftp://x"}, "STRIPE_API_URL"),
        ({"STRIPE_WEBHOOK_SECRET": "whsec_abc"}, "without STRIPE_SECRET_KEY"),
        ({**STRIPE, "TOKENPLANS_STRIPE_OFFLINE": "true"}, "both set"),
        ({"TOKENPLANS_STRIPE_OFFLINE": "true"}, "STRIPE_WEBHOOK_SECRET"),
    ],
)
def test_bad_stripe_settings_are_one_line_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        build_gateways(settings(**environ))
    assert "\n" not in str(refused.value)


def test_development_mode_serves_both_offline_stand_ins() -> None:
    dev = DevSecrets.fresh()
    gateways = build_gateways(dev_settings(settings(**STRIPE), dev))

    assert isinstance(gateways["razorpay"], OfflineGateway)
    assert isinstance(gateways["stripe"], OfflineStripe)


def test_dev_pay_completes_a_stripe_order_through_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    dev = DevSecrets.fresh()
    save_dev_secrets(dev)
    configured = dev_settings(
        settings(TOKENPLANS_DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3"), dev
    )
    upgrade_schema(configured.database_url)
    token = mint_token("alice", secret=dev.jwt_secret, ttl=timedelta(minutes=10))
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(build_app(configured)) as client:
        order = client.post("/api/payments/stripe/order", json={"plan": "premium"}, headers=auth)
        assert order.status_code == 200, order.text
        assert order.json()["checkout_url"].startswith("https://checkout.stripe.invalid/")
        assert "/api/payments/stripe/verify" not in client.get("/openapi.json").json()["paths"]

        assert main(["dev", "pay", order.json()["order_id"], "--url", "http://t"]) == 0
        command = shlex.split(capsys.readouterr().out)
        body = command[command.index("--data-raw") + 1]
        signature = next(a for a in command if a.startswith("Stripe-Signature: "))
        headers = {"Content-Type": "application/json", "Stripe-Signature": signature[18:]}
        assert command[-1] == "http://t/api/payments/stripe/webhook"

        stale = signature_header((dev.payment_secret.encode(),), 1, body.encode())
        refused = client.post(
            "/api/payments/stripe/webhook",
            content=body,
            headers={**headers, "Stripe-Signature": stale},
        )
        assert refused.status_code == 400
        assert client.get("/api/tokens/usage", headers=auth).json()["plan"] == "basic"

        applied = client.post("/api/payments/stripe/webhook", content=body, headers=headers)
        again = client.post("/api/payments/stripe/webhook", content=body, headers=headers)

        assert applied.json()["status"] == "applied", applied.text
        assert again.json()["status"] == "duplicate"
        assert client.get("/api/tokens/usage", headers=auth).json()["plan"] == "premium"
        (listed,) = client.get("/api/payments", headers=auth).json()["payments"]
        assert (listed["provider"], listed["status"]) == ("stripe", "paid")
