"""``tokenplans lots SUBJECT``: prints the lots in burn order; grants and voids them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenplans_adapters.main.cli import main


def test_lots_grants_prints_in_burn_order_refuses_a_conflict_and_voids(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["lots", "alice", "--grant", "500", "--expires", "never", "--lot-id", "gift"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[1:-1]] == ["plan", "gift"]
    assert out[-1] == "total: quota 1500, used 0, held 0, remaining 1500"

    again = ["lots", "alice", "--grant", "600", "--expires", "never", "--lot-id", "gift"]
    assert main(again) == 1
    assert "lot 'gift' was granted with other fields" in capsys.readouterr().err

    assert main(["lots", "alice", "--void", "gift"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "total: quota 1000, used 0, held 0, remaining 1000"
    )
    assert main(["lots", "alice", "--void", "nope"]) == 1
    assert "no lot 'nope'" in capsys.readouterr().err
