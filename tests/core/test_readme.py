"""The README's library example runs, so it cannot drift from the API it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


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


def test_the_readme_library_example_is_the_file_the_wheel_check_runs() -> None:
    # `nox -s package` runs docs/examples/library.py against the installed wheel.
    assert library_example() in (ROOT / "docs" / "examples" / "library.py").read_text()


def test_the_readme_metering_example_runs_and_its_asserts_hold() -> None:
    namespace: dict[str, object] = {"__name__": "readme_metering"}

    exec(compile(library_example("Metering a model call"), str(README), "exec"), namespace)  # noqa: S102

    assert namespace["settled"].settled == 250  # type: ignore[attr-defined]


def test_the_readme_pricing_example_runs_and_its_asserts_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    namespace: dict[str, object] = {"__name__": "readme_pricing"}
    monkeypatch.chdir(ROOT)  # the example reads docs/examples/prices.toml from the root

    exec(compile(library_example("Pricing model calls"), str(README), "exec"), namespace)  # noqa: S102

    assert namespace["settled"].settled == 10  # type: ignore[attr-defined]
    entries = namespace["service"].history(namespace["alice"]).entries  # type: ignore[attr-defined]
    assert [entry.priced.credits for entry in entries[:3]] == [10, 35, 5]


def test_the_readme_shows_the_example_price_book_as_it_is() -> None:
    section = README.read_text(encoding="utf-8").split("## Pricing model calls", 1)[1]
    shown = re.search(r"```toml\n(.*?)```", section, re.DOTALL)

    assert shown is not None
    assert shown.group(1) in (ROOT / "docs" / "examples" / "prices.toml").read_text()
