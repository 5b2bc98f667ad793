"""The storage example of docs/databases.md runs (on a SQLite file instead of its
PostgreSQL URL)."""

from __future__ import annotations

import re
from pathlib import Path

from doc_blocks import DOCS, first_fenced

from tokenplans import Principal

GUIDE = DOCS / "databases.md"


def test_the_storage_example_runs_against_a_sqlite_file(tmp_path: Path) -> None:
    code = re.sub(r'make_engine\("[^"]+"\)', "make_engine(URL)", first_fenced(GUIDE, "python"))
    namespace: dict[str, object] = {"URL": f"sqlite:///{tmp_path / 'readme.db'}"}

    exec(compile(code, str(GUIDE), "exec"), namespace)  # noqa: S102 - our own documentation

    tokens = namespace["tokens"]
    receipt = tokens.consume(Principal("alice"), 40)  # type: ignore[attr-defined]
    assert receipt.usage.remaining == 960
    namespace["engine"].dispose()  # type: ignore[attr-defined]
