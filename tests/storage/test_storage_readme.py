"""The README's storage example runs (on a SQLite file instead of its PostgreSQL URL)."""

from __future__ import annotations

import re
from pathlib import Path

from tokenplans import Principal

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_storage_example_runs_against_a_sqlite_file(tmp_path: Path) -> None:
    section = README.read_text(encoding="utf-8").split("## Storage and databases", 1)[1]
    match = re.search(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    assert match is not None
    code = re.sub(r'make_engine\("[^"]+"\)', "make_engine(URL)", match.group(1))
    namespace: dict[str, object] = {"URL": f"sqlite:///{tmp_path / 'readme.db'}"}

    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own README

    tokens = namespace["tokens"]
    receipt = tokens.consume(Principal("alice"), 40)  # type: ignore[attr-defined]
    assert receipt.usage.remaining == 960
    namespace["engine"].dispose()  # type: ignore[attr-defined]
