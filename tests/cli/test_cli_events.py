"""``tokenplans events deliver --once``: delivers what is due to a real local receiver,
signed, and exits; the event settings are read and checked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from receiver import receiver
from standardwebhooks import Webhook

from tokenplans import PlanCatalog, Principal, TokenService
from tokenplans.ports import WebhookEndpoint
from tokenplans.testing import SettableClock
from tokenplans_adapters.main.cli import main
from tokenplans_adapters.main.config import ConfigError, Settings
from tokenplans_adapters.sql import SqlAccountStore, make_engine
from tokenplans_adapters.webhooks import new_secret


def test_events_deliver_once_sends_what_is_due_and_exits(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["db", "upgrade"]) == 0
    engine = make_engine(f"sqlite:///{workdir / 'tokenplans.sqlite3'}")
    store = SqlAccountStore(engine, clock_source="process")
    try:
        with receiver() as hook:
            secret = new_secret()
            now = datetime.now(UTC)
            store.add_endpoint(WebhookEndpoint("wh_cli", hook.url, secret, now))
            service = TokenService(store, PlanCatalog.default(), SettableClock(now))
            service.consume(Principal("cli-user"), 1000)
            monkeypatch.setenv("TOKENPLANS_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
            capsys.readouterr()
            assert main(["events", "deliver", "--once"]) == 0
            assert "2 claimed" in capsys.readouterr().out
            payloads = [Webhook(secret).verify(r.body, r.headers) for r in hook.received]
            assert [p["data"]["threshold"] for p in payloads] == [80, 100]
            assert json.loads(hook.received[0].body)["subject"] == "cli-user"
    finally:
        engine.dispose()


def test_the_event_settings_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {
            "TOKENPLANS_EVENT_THRESHOLDS": "100, 50,90",
            "TOKENPLANS_WEBHOOK_RETRY_SCHEDULE": "1,2.5,10",
            "TOKENPLANS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        },
        env_file=None,
    )
    assert settings.event_thresholds == (50, 90, 100)
    assert settings.delivery.retry_schedule == (1, 2.5, 10)
    assert settings.delivery.allow_private_targets
    assert Settings.from_env(settings.environment(), env_file=None) == settings
    for name, value in [
        ("TOKENPLANS_EVENT_THRESHOLDS", "0"),
        ("TOKENPLANS_EVENT_THRESHOLDS", "80%"),
        ("TOKENPLANS_WEBHOOK_RETRY_SCHEDULE", "1,x"),
        ("TOKENPLANS_WEBHOOK_RETRY_SCHEDULE", "-1"),
    ]:
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value}, env_file=None)
