"""The composition root's payment wiring: which gateway the settings choose, the
``tokenplans dev pay`` command, and the payments walk-through (docs/payments.md) against the real
``tokenplans serve --dev`` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest

from tokenplans_adapters.main.app import build_gateway, offline_payment_secret
from tokenplans_adapters.main.cli import main
from tokenplans_adapters.main.config import ConfigError, Settings
from tokenplans_adapters.main.dev import DevSecrets, dev_settings, save_dev_secrets
from tokenplans_adapters.razorpay import OfflineGateway, RazorpayGateway

JWT_SECRET = "a-jwt-secret-that-is-long-enough-for-hs256-0123456789"
PAYMENT_VARIABLES = (
    "RAZORPAY_KEY_ID",
    "RAZORPAY_KEY_SECRET",
    "RAZORPAY_WEBHOOK_SECRET",
    "RAZORPAY_API_URL",
    "TOKENPLANS_RAZORPAY_KEY_ID",
    "TOKENPLANS_RAZORPAY_KEY_SECRET",
    "TOKENPLANS_RAZORPAY_WEBHOOK_SECRET",
    "TOKENPLANS_RAZORPAY_PREVIOUS_WEBHOOK_SECRET",
    "TOKENPLANS_RAZORPAY_API_URL",
    "TOKENPLANS_OFFLINE_PAYMENT_SECRET",
    "TOKENPLANS_JWT_SECRET",
    "JWT_SECRET",
    "TOKENPLANS_JWT_PUBLIC_KEY",
    "TOKENPLANS_JWT_JWKS_URL",
)


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No inherited payment or JWT settings, and no stray ``.env``."""
    for name in PAYMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settings(**environ: str) -> Settings:
    return Settings.from_env(environ, env_file=None)


def test_razorpays_conventional_variables_configure_the_razorpay_gateway() -> None:
    configured = settings(
        RAZORPAY_KEY_ID="rzp_test_abc",
        RAZORPAY_KEY_SECRET="key-secret",
        RAZORPAY_WEBHOOK_SECRET="whsec-current",
        TOKENPLANS_RAZORPAY_PREVIOUS_WEBHOOK_SECRET="whsec-previous",
        RAZORPAY_API_URL="http://127.0.0.1:9/v1",
    )

    gateway = build_gateway(configured)

    assert isinstance(gateway, RazorpayGateway)
    with gateway:
        assert gateway.key_id == "rzp_test_abc"
        body = b'{"event":"payment.captured"}'
        for secret in ("whsec-current", "whsec-previous"):
            assert gateway.verify_webhook(
                body=body, signature=OfflineGateway(secret).sign_webhook(body)
            )
    assert "key-secret" not in repr(configured)
    assert "whsec" not in repr(configured)


def test_without_razorpay_keys_the_offline_gateway_signs_with_a_key_from_the_jwt_secret() -> None:
    configured = settings(TOKENPLANS_JWT_SECRET=JWT_SECRET)

    gateway = build_gateway(configured)

    assert isinstance(gateway, OfflineGateway)
    secret = offline_payment_secret(configured)
    assert secret is not None
    assert secret != JWT_SECRET
    signature = OfflineGateway(secret).sign_payment("order_A", "pay_B")
    assert gateway.verify_payment(order_id="order_A", payment_id="pay_B", signature=signature)


def test_without_a_webhook_secret_the_offline_gateway_refuses_every_webhook() -> None:
    configured = settings(TOKENPLANS_JWT_SECRET=JWT_SECRET)
    secret = offline_payment_secret(configured)
    assert secret is not None
    body = b'{"event":"order.paid"}'

    gateway = build_gateway(configured)

    assert gateway is not None
    assert not gateway.verify_webhook(
        body=body, signature=OfflineGateway(secret).sign_webhook(body)
    )


def test_the_offline_gateway_checks_webhooks_with_the_configured_webhook_secret() -> None:
    configured = settings(TOKENPLANS_JWT_SECRET=JWT_SECRET, RAZORPAY_WEBHOOK_SECRET="whsec-1")
    secret = offline_payment_secret(configured)
    assert secret is not None
    body = b'{"event":"order.paid"}'

    gateway = build_gateway(configured)

    assert gateway is not None
    assert gateway.verify_webhook(body=body, signature=OfflineGateway("whsec-1").sign_webhook(body))
    assert not gateway.verify_webhook(
        body=body, signature=OfflineGateway(secret).sign_webhook(body)
    )


def test_an_explicit_offline_secret_wins_over_the_derived_one() -> None:
    configured = settings(TOKENPLANS_JWT_SECRET=JWT_SECRET, TOKENPLANS_OFFLINE_PAYMENT_SECRET="s")

    assert offline_payment_secret(configured) == "s"


def test_with_no_secret_at_all_there_are_no_payments() -> None:
    assert build_gateway(settings(TOKENPLANS_JWT_JWKS_URL="https://id.example/jwks")) is None


@pytest.mark.parametrize(
    "environ",
    [
        {"RAZORPAY_KEY_ID": "rzp_test_abc"},
        {"RAZORPAY_KEY_SECRET": "key-secret"},
        {
            "RAZORPAY_KEY_ID": "rzp_test_abc",
            "RAZORPAY_KEY_SECRET": "key-secret",
            "TOKENPLANS_RAZORPAY_PREVIOUS_WEBHOOK_SECRET": "old",
        },
    ],
    ids=["key id alone", "key secret alone", "previous webhook secret without a current one"],
)
def test_half_a_razorpay_configuration_is_refused_at_start_up(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="RAZORPAY"):
        build_gateway(settings(**environ))


def test_dev_pay_prints_a_verify_body_the_offline_gateway_accepts(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOKENPLANS_OFFLINE_PAYMENT_SECRET", "dev-secret")

    assert main(["dev", "pay", "order_A1", "--payment-id", "pay_B2"]) == 0

    body = json.loads(capsys.readouterr().out)
    assert body["razorpay_order_id"] == "order_A1"
    assert body["razorpay_payment_id"] == "pay_B2"
    assert OfflineGateway("dev-secret").verify_payment(
        order_id="order_A1", payment_id="pay_B2", signature=body["razorpay_signature"]
    )


def test_dev_pay_can_print_a_signed_webhook_delivery(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOKENPLANS_OFFLINE_PAYMENT_SECRET", "dev-secret")
    monkeypatch.setenv("RAZORPAY_WEBHOOK_SECRET", "webhook-secret")

    assert main(["dev", "pay", "order_A1", "--webhook", "order.paid", "--url", "http://h:1"]) == 0

    command = shlex.split(capsys.readouterr().out)
    body = command[command.index("--data-raw") + 1]
    signature = next(a for a in command if a.startswith("X-Razorpay-Signature: ")).split(": ")[1]
    assert OfflineGateway("webhook-secret").verify_webhook(body=body.encode(), signature=signature)
    assert json.loads(body)["event"] == "order.paid"
    assert command[-1] == "http://h:1/api/payments/webhook"


def test_dev_pay_refuses_a_webhook_that_a_server_without_a_webhook_secret_would_refuse(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOKENPLANS_OFFLINE_PAYMENT_SECRET", "dev-secret")

    assert main(["dev", "pay", "order_A1", "--webhook", "order.paid"]) == 2
    assert "no RAZORPAY_WEBHOOK_SECRET" in capsys.readouterr().err


def test_dev_pay_signs_for_the_dev_server_of_this_folder_whatever_is_configured(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOKENPLANS_OFFLINE_PAYMENT_SECRET", "configured-secret")
    dev = DevSecrets.fresh()
    save_dev_secrets(attrs.evolve(dev, api_url="http://127.0.0.1:8123"))

    assert main(["dev", "pay", "order_A1", "--webhook", "order.paid"]) == 0

    command = shlex.split(capsys.readouterr().out)
    body = command[command.index("--data-raw") + 1]
    signature = next(a for a in command if a.startswith("X-Razorpay-Signature: ")).split(": ")[1]
    gateway = build_gateway(dev_settings(settings(), dev))
    assert gateway is not None
    assert gateway.verify_webhook(body=body.encode(), signature=signature)
    assert command[-1] == "http://127.0.0.1:8123/api/payments/webhook"


def test_dev_pay_refuses_when_razorpay_keys_are_configured(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAZORPAY_KEY_ID", "rzp_test_abc")
    monkeypatch.setenv("RAZORPAY_KEY_SECRET", "key-secret")

    assert main(["dev", "pay", "order_A1"]) == 2
    assert "Razorpay keys are configured" in capsys.readouterr().err


def test_dev_pay_without_any_secret_says_where_to_find_one(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dev", "pay", "order_A1"]) == 2
    assert "TOKENPLANS_OFFLINE_PAYMENT_SECRET" in capsys.readouterr().err


# -- the payments walk-through, against the real server --------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    """``tokenplans serve --dev`` on SQLite in ``tmp_path``: its URL, the printed user
    token, and an environment for the CLI (which finds the dev server's secrets in its
    file in ``tmp_path``)."""
    port = _free_port()
    tool = str(Path(sys.executable).with_name("tokenplans"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TOKENPLANS_", "JWT_", "RAZORPAY_", "DATABASE_URL"))
    }
    out = tmp_path / "serve.out"
    with out.open("w") as stdout:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [tool, "serve", "--dev", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "tokenplans serve --dev exited"
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tokenplans serve --dev did not start"
            time.sleep(0.2)
        banner = out.read_text()
        token = re.search(r"user token .*\n\s+(\S+)", banner)
        assert token is not None
        yield url, token.group(1), env
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.e2e
@pytest.mark.slow
def test_the_readme_walk_through_upgrades_a_basic_account_to_premium_with_carry_over(
    dev_server: tuple[str, str, dict[str, str]], tmp_path: Path
) -> None:
    url, token, cli_env = dev_server
    auth = {"Authorization": f"Bearer {token}"}
    tool = str(Path(sys.executable).with_name("tokenplans"))
    httpx.post(f"{url}/api/tokens/consume", json={"amount": 700}, headers=auth).raise_for_status()

    order = httpx.post(f"{url}/api/payments/order", json={"plan": "premium"}, headers=auth)
    order.raise_for_status()
    paid = subprocess.run(  # noqa: S603 - our own console script
        [tool, "dev", "pay", order.json()["order_id"]],
        env=cli_env,
        cwd=tmp_path,
        capture_output=True,
        check=True,
    ).stdout
    verified = httpx.post(
        f"{url}/api/payments/verify",
        content=paid,
        headers={**auth, "Content-Type": "application/json"},
    )

    assert verified.status_code == 200, verified.text
    usage = httpx.get(f"{url}/api/tokens/usage", headers=auth).json()
    assert (usage["plan"], usage["token_quota"], usage["token_used"]) == ("premium", 50300, 0)
    webhook = subprocess.run(  # noqa: S603 - our own console script
        [tool, "dev", "pay", order.json()["order_id"], "--webhook", "order.paid"],
        env=cli_env,
        cwd=tmp_path,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    delivered = subprocess.run(  # noqa: S603 - the curl line dev pay printed
        shlex.split(webhook), capture_output=True, check=True, text=True
    ).stdout
    assert json.loads(delivered)["status"] == "already_applied"
    assert httpx.get(f"{url}/api/tokens/usage", headers=auth).json()["token_quota"] == 50300
