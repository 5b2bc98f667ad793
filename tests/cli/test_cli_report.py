"""``tokenplans report``: a subject's or every subject's usage as CSV, from the rollup."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tokenplans import ModelUsage, PlanCatalog, Principal, TokenService
from tokenplans.testing import SettableClock
from tokenplans_adapters.main.cli import main
from tokenplans_adapters.sql import SqlAccountStore, make_engine


def test_report_prints_a_subjects_rows_and_every_subjects_as_csv(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    engine = make_engine(f"sqlite:///{workdir / 'tokenplans.sqlite3'}")
    clock = SettableClock(datetime(2026, 4, 1, 10, tzinfo=UTC))
    service = TokenService(
        SqlAccountStore(engine, clock_source="process"), PlanCatalog.default(), clock
    )
    service.consume(Principal("alice"), 5)
    service.consume(Principal("alice"), usage=ModelUsage("gpt-4o", 3, 4))
    clock.advance(days=1)
    service.consume(Principal("bob"), 9)
    engine.dispose()
    capsys.readouterr()

    week = ["--from", "2026-04-01", "--to", "2026-04-07"]
    assert main(["report", "alice", *week, "--group-by", "day,model"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "day,model,credits,calls,input_tokens,output_tokens,cache_read_tokens,"
        "cache_write_tokens,reasoning_tokens",
        "2026-04-01,,5,1,0,0,0,0,0",
        "2026-04-01,gpt-4o,7,1,3,4,0,0,0",
        "total,,12,2,3,4,0,0,0",
    ]
    assert main(["report", *week]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["2026-04-01", "12", "2"],
        ["2026-04-02", "9", "1"],
        ["total", "21", "3"],
    ]
    assert main(["report", "alice", "--from", "2026-04-07", "--to", "2026-04-01"]) == 2
    assert "must not be after" in capsys.readouterr().err
