"""docs/pricing.md's examples run, so the pricing guide cannot drift from the code."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "pricing.md"


def python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)


@pytest.mark.parametrize("example", python_examples(), ids=lambda code: code.split("\n")[0])
def test_each_python_example_in_the_pricing_guide_runs(
    example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "genai_prices" in example and importlib.util.find_spec("genai_prices") is None:
        pytest.skip("the prices extra is not installed")
    monkeypatch.chdir(ROOT)  # the examples name docs/examples/prices.toml from the root

    exec(compile(example, str(GUIDE), "exec"), {"__name__": "pricing_guide"})  # noqa: S102


def test_the_guide_shows_the_example_book_file_as_it_is() -> None:
    shown = re.search(r"```toml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)

    assert shown is not None
    assert shown.group(1) in (ROOT / "docs" / "examples" / "prices.toml").read_text()
