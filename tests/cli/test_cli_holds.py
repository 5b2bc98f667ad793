"""``tokenplans holds sweep``: writes the due expiries of accounts nobody touched again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from tokenplans import Hold, HoldStatus, PlanCatalog, Principal, TokenService
from tokenplans.ports import Commit, HoldWrite
from tokenplans.testing import SettableClock
from tokenplans_adapters.main.cli import main
from tokenplans_adapters.sql import SqlAccountStore, make_engine

ADMIN = Principal("ops", frozenset({"tokenplans:admin"}))


def test_holds_sweep_expires_the_holds_past_their_expiry_and_no_others(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    engine = make_engine(f"sqlite:///{workdir / 'tokenplans.sqlite3'}")
    store = SqlAccountStore(engine, clock_source="process")
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


def test_holds_sweep_batch_1_ends_with_holds_of_zero_credits_stored(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open holds of 0 as earlier versions stored them (the account holds nothing, so no
    roll-forward expires them) used to be found by every batch: ``--batch 1`` looped
    forever. Each batch now starts after the last subject of the one before."""
    assert main(["db", "upgrade"]) == 0
    engine = make_engine(f"sqlite:///{workdir / 'tokenplans.sqlite3'}")
    store = SqlAccountStore(engine, clock_source="process")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    past = TokenService(store, PlanCatalog.default(), SettableClock(an_hour_ago))
    for n in range(3):
        subject = f"zero-{n}"
        past.grant(ADMIN, 1, subject=subject)  # an account at version 2, holding nothing
        account = store.load(subject)
        assert account is not None
        zero = Hold(subject, subject, "free", 0, an_hour_ago, an_hour_ago + timedelta(seconds=60))
        grant = store.history(subject, limit=1)[0]
        after = attrs.evolve(account, version=account.version + 1)
        entry = attrs.evolve(grant, after=after, quota_delta=0, amount=0)
        store.commit(Commit(after, account.version, (entry,), (HoldWrite(zero, None),)))
    past.reserve(Principal("paid"), 100, hold_id="left-open", ttl_seconds=60)
    sweeps = 0
    sweep = TokenService.sweep_expired_holds

    def counted(*args: Any, **kwargs: Any) -> Sequence[str]:
        nonlocal sweeps
        sweeps += 1
        assert sweeps <= 10, "the sweep does not end"
        return sweep(*args, **kwargs)

    monkeypatch.setattr(TokenService, "sweep_expired_holds", counted)
    capsys.readouterr()
    try:
        assert main(["holds", "sweep", "--batch", "1"]) == 0
        assert "swept expired holds of 4 account(s)" in capsys.readouterr().out
        assert store.load("paid").token_held == 0  # type: ignore[union-attr]
        assert store.find_hold("paid", "left-open").status is HoldStatus.EXPIRED  # type: ignore[union-attr]
    finally:
        engine.dispose()
