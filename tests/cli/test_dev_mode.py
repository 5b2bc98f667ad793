"""Development mode: its own secrets, never the configured ones, kept in a local file so
that ``tokenplans token --dev`` signs for the running dev server.

``serve`` runs in-process with ``uvicorn.run`` replaced by a recorder, so a test sees
what the banner printed and the environment the server's workers would read.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tokenplans import ADMIN_SCOPE, AuthenticationError
from tokenplans_adapters.jwt_identity import JwtIdentity, mint_token
from tokenplans_adapters.main.app import build_gateway, build_identity
from tokenplans_adapters.main.cli import main
from tokenplans_adapters.main.config import Settings
from tokenplans_adapters.main.dev import DEV_FILE
from tokenplans_adapters.razorpay import OfflineGateway

PRODUCTION_SECRET = "the-production-jwt-secret-0123456789-abcdefghijklmnop"
PRODUCTION_OFFLINE_SECRET = "the-production-offline-payment-secret-0123456789"
PRODUCTION_WEBHOOK_SECRET = "the-production-webhook-secret-0123456789"
EXAMPLE_PRICES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "prices.toml"
TOKEN = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, str]]]:
    """Replace ``uvicorn.run``: each call records the environment the workers would see.
    ``serve`` hands its settings to the workers through ``os.environ``, which is put back
    afterwards."""
    saved = dict(os.environ)
    runs: list[dict[str, str]] = []

    def run(*_args: Any, **_kwargs: Any) -> None:
        runs.append(dict(os.environ))

    monkeypatch.setattr(uvicorn, "run", run)
    yield runs
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def production_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A configuration a production server could share with a developer's shell."""
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", PRODUCTION_SECRET)
    monkeypatch.setenv("TOKENPLANS_JWT_AUDIENCE", "billing")
    monkeypatch.setenv("TOKENPLANS_OFFLINE_PAYMENT_SECRET", PRODUCTION_OFFLINE_SECRET)
    monkeypatch.setenv("RAZORPAY_WEBHOOK_SECRET", PRODUCTION_WEBHOOK_SECRET)


def serve_dev(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["serve", "--dev", "--port", "18765"]) == 0
    return capsys.readouterr().out


def dev_identity() -> JwtIdentity:
    return JwtIdentity(secret=json.loads(DEV_FILE.read_text())["jwt_secret"])


@pytest.mark.usefixtures("production_configured")
def test_dev_mode_never_signs_with_derives_from_or_prints_a_configured_secret(
    served: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    printed = serve_dev(capsys)

    tokens = TOKEN.findall(printed)
    assert len(tokens) == 3  # the user's, the admin's, and the user's again in the curl line
    production = JwtIdentity(secret=PRODUCTION_SECRET)
    for token in tokens:
        with pytest.raises(AuthenticationError):
            production.authenticate(token)
        assert dev_identity().authenticate(token).subject in ("dev-user", "dev-admin")
    derived = hmac.new(
        PRODUCTION_SECRET.encode(), b"tokenplans offline payment gateway", hashlib.sha256
    ).hexdigest()
    workers = served[0]
    for secret in (
        PRODUCTION_SECRET,
        derived,
        PRODUCTION_OFFLINE_SECRET,
        PRODUCTION_WEBHOOK_SECRET,
    ):
        assert secret not in printed
        assert secret not in DEV_FILE.read_text()
        assert secret not in workers.values()
    assert "ignoring the JWT secret" in printed


@pytest.mark.usefixtures("production_configured")
def test_the_dev_servers_workers_verify_with_the_dev_secret_and_pay_offline(
    served: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    serve_dev(capsys)

    workers = Settings.from_env(served[0], env_file=None)
    identity = build_identity(workers)
    gateway = build_gateway(workers)

    assert main(["token", "--dev", "alice"]) == 0
    assert identity.authenticate(capsys.readouterr().out.strip()).subject == "alice"
    assert main(["token", "--dev", "--admin", "ops"]) == 0
    assert identity.authenticate(capsys.readouterr().out.strip()).scopes == {ADMIN_SCOPE}
    with pytest.raises(AuthenticationError):  # a production token is no good here
        identity.authenticate(mint_token("alice", secret=PRODUCTION_SECRET))
    payment_secret = json.loads(DEV_FILE.read_text())["payment_secret"]
    assert isinstance(gateway, OfflineGateway)
    body = b'{"event":"order.paid"}'
    signed = OfflineGateway(payment_secret)
    assert gateway.verify_webhook(body=body, signature=signed.sign_webhook(body))
    assert gateway.verify_payment(
        order_id="order_A", payment_id="pay_B", signature=signed.sign_payment("order_A", "pay_B")
    )


def test_the_dev_file_is_private_and_its_secrets_survive_a_restart(
    workdir: Path, served: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    first = TOKEN.findall(serve_dev(capsys))[0]
    serve_dev(capsys)

    assert stat.S_IMODE((workdir / DEV_FILE).stat().st_mode) == 0o600
    assert dev_identity().authenticate(first).subject == "dev-user"
    assert served[0]["TOKENPLANS_JWT_SECRET"] == served[1]["TOKENPLANS_JWT_SECRET"]
    assert json.loads(DEV_FILE.read_text())["api_url"] == "http://127.0.0.1:18765"


def test_token_dev_without_a_dev_server_says_to_start_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["token", "--dev", "alice"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("tokenplans: error: no development server has run in this folder")
    assert "tokenplans serve --dev" in err


def test_a_damaged_dev_file_is_refused_with_what_to_do(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / DEV_FILE).write_text('{"jwt_secret": "short"}')

    assert main(["token", "--dev", "alice"]) == 2

    assert "delete it, then run `tokenplans serve --dev` again" in capsys.readouterr().err


def test_serve_without_razorpay_keys_warns_that_payments_are_offline_and_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch,
    served: list[dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", PRODUCTION_SECRET)

    assert main(["serve", "--port", "18766"]) == 0

    err = capsys.readouterr().err
    assert err.startswith("tokenplans: warning: no Razorpay keys are set")
    assert "offline gateway (key_id rzp_offline)" in err
    assert "set RAZORPAY_KEY_ID, RAZORPAY_KEY_SECRET and RAZORPAY_WEBHOOK_SECRET" in err
    assert served  # a warning, not a refusal


def test_serve_refuses_half_a_razorpay_configuration_before_starting(
    monkeypatch: pytest.MonkeyPatch,
    served: list[dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOKENPLANS_JWT_SECRET", PRODUCTION_SECRET)
    monkeypatch.setenv("RAZORPAY_KEY_ID", "rzp_test_abc")

    assert main(["serve", "--port", "18767"]) == 2

    assert "must be set together" in capsys.readouterr().err
    assert not served


@pytest.mark.parametrize(
    "path", ["tokenplans.sqlite3-wal", "tokenplans.sqlite3-shm", ".tokenplans-dev.json"]
)
def test_git_ignores_the_files_the_quickstart_creates(path: str) -> None:
    root = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")

    ignored = subprocess.run(  # noqa: S603 - fixed arguments
        ["git", "check-ignore", "--quiet", "--no-index", path],  # noqa: S607 - git from PATH
        cwd=root,
        check=False,
    )

    assert ignored.returncode == 0, f"{path} is not in .gitignore"


def test_the_dev_banner_says_no_prices_are_active_by_default(
    served: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert "  prices:   none: one credit per counted token" in serve_dev(capsys)


def test_the_dev_banner_names_the_active_price_book_and_its_version(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    served: list[dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    shutil.copy(EXAMPLE_PRICES, workdir / "prices.toml")
    monkeypatch.setenv("TOKENPLANS_PRICE_BOOK", "prices.toml")

    printed = serve_dev(capsys)

    assert "  prices:   price book prices.toml (version 2026-12-01)\n" in printed


def test_the_dev_banner_names_the_genai_prices_table_and_the_rate(
    monkeypatch: pytest.MonkeyPatch,
    served: list[dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOKENPLANS_PRICES", "genai-prices")
    monkeypatch.setenv("TOKENPLANS_CREDITS_PER_USD", "1000")

    printed = serve_dev(capsys)

    table = f"genai-prices {importlib.metadata.version('genai-prices')}"
    assert f"  prices:   the {table} table, 1000 credits per US dollar\n" in printed
