"""The README's library example runs, so it cannot drift from the API it shows."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def library_example(heading: str = "Using it as a library") -> str:
    """The first ```python block under the ``heading`` section."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the library section has no python example"
    return match.group(1)


def test_the_readme_library_example_runs_and_its_asserts_hold() -> None:
    namespace: dict[str, object] = {"__name__": "readme_example"}

    exec(compile(library_example(), str(README), "exec"), namespace)  # noqa: S102 - our own README

    service = namespace["service"]
    usage = service.usage(namespace["alice"])  # type: ignore[attr-defined]
    assert (usage.plan, usage.token_quota, usage.token_used) == ("basic", 1000, 0)


def test_the_readme_metering_example_runs_and_its_asserts_hold() -> None:
    namespace: dict[str, object] = {"__name__": "readme_metering"}

    exec(compile(library_example("Metering a model call"), str(README), "exec"), namespace)  # noqa: S102

    assert namespace["settled"].settled == 250  # type: ignore[attr-defined]
