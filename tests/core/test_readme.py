"""The library examples of the README and of the documentation run as written, so they
cannot drift from the API they show."""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_blocks import DOCS, README, ROOT, first_fenced


def _run(path: Path, source: str, name: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": name}
    exec(compile(source, str(path), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


@pytest.mark.parametrize(
    ("path", "heading"),
    [(README, "## Using it as a library"), (DOCS / "library.md", "# Python library")],
    ids=["README", "docs/library.md"],
)
def test_the_library_example_runs_and_its_asserts_hold(path: Path, heading: str) -> None:
    namespace = _run(path, first_fenced(path, "python", under=heading), "library_example")

    service = namespace["service"]
    usage = service.usage(namespace["alice"])  # type: ignore[attr-defined]
    assert (usage.plan, usage.token_quota, usage.token_used) == ("basic", 1000, 0)


def test_the_library_examples_are_the_file_the_wheel_check_runs() -> None:
    # `nox -s package` runs docs/examples/library.py against the installed wheel.
    example = (ROOT / "docs" / "examples" / "library.py").read_text(encoding="utf-8")
    for path, heading in [(README, "## Using it as a library"), (DOCS / "library.md", None)]:
        assert first_fenced(path, "python", under=heading) in example


def test_the_metering_example_runs_and_its_asserts_hold() -> None:
    guide = DOCS / "holds.md"
    namespace = _run(guide, first_fenced(guide, "python"), "holds_example")

    assert namespace["settled"].settled == 250  # type: ignore[attr-defined]


def test_the_pricing_example_runs_and_its_asserts_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    guide = DOCS / "pricing.md"
    monkeypatch.chdir(ROOT)  # the example reads docs/examples/prices.toml from the root
    example = first_fenced(guide, "python", under="## Pricing a call: debit, hold, settle")

    namespace = _run(guide, example, "pricing_example")

    assert namespace["settled"].settled == 10  # type: ignore[attr-defined]
    entries = namespace["service"].history(namespace["alice"]).entries  # type: ignore[attr-defined]
    assert [entry.priced.credits for entry in entries[:3]] == [10, 35, 5]
