"""``tokenplans holds sweep``: writes the due expiries of accounts nobody touched again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tokenplans import HoldStatus, PlanCatalog, Principal, TokenService
from tokenplans.testing import SettableClock
from tokenplans_adapters.main.cli import main
from tokenplans_adapters.sql import SqlAccountStore, make_engine


def test_holds_sweep_expires_the_holds_past_their_expiry_and_no_others(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    engine = make_engine(f"sqlite:///{workdir / 'tokenplans.sqlite3'}")
    store = SqlAccountStore(engine)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    past = TokenService(store, PlanCatalog.default(), SettableClock(an_hour_ago))
    for n in range(3):
        past.reserve(Principal(f"idle-{n}"), 100, hold_id="left-open", ttl_seconds=60)
    past.reserve(Principal("busy"), 100, hold_id="still-open", ttl_seconds=86_400)
    capsys.readouterr()
    try:
        assert main(["holds", "sweep", "--batch", "2"]) == 0
        assert "swept expired holds of 3 account(s)" in capsys.readouterr().out
        for n in range(3):
            assert store.load(f"idle-{n}").token_held == 0  # type: ignore[union-attr]
            hold = store.find_hold(f"idle-{n}", "left-open")
            assert hold is not None
            assert hold.status is HoldStatus.EXPIRED
        assert store.find_hold("busy", "still-open").is_open  # type: ignore[union-attr]
        assert main(["holds", "sweep"]) == 0
        assert "of 0 account(s)" in capsys.readouterr().out
    finally:
        engine.dispose()
