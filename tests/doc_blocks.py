"""The fenced blocks of README.md and of the documentation site, for the tests that run
them as written (so an example cannot drift from the code it shows).

``fenced(path, "python", under="## Over HTTP")`` is every ```python block of the file's
section under that heading, up to the next heading of the same or a higher level;
``marked(path, "walkthrough")`` the blocks right after a ``<!-- walkthrough ... -->``
comment, which say which test runs them.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def section(path: Path, heading: str) -> str:
    """The text under ``heading`` (written with its ``#``s, e.g. ``"## Over HTTP"``), up to
    the next heading of the same or a higher level; fenced blocks never end a section."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next((n for n, line in enumerate(lines) if line.rstrip() == heading), None)
    assert start is not None, f"{path.name} has no heading {heading!r}"
    taken: list[str] = []
    fence = False
    for line in lines[start + 1 :]:
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(rf"#{{1,{level}}} ", line):
            break
        taken.append(line)
    return "".join(taken)


def fenced(path: Path, language: str, *, under: str | None = None) -> list[str]:
    """The bodies of the ```language blocks of ``path`` (of one section with ``under``)."""
    text = section(path, under) if under else path.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def first_fenced(path: Path, language: str, *, under: str | None = None) -> str:
    """The first ```language block of ``path`` (of one section with ``under``)."""
    blocks = fenced(path, language, under=under)
    assert blocks, f"{path.name} has no {language} block" + (f" under {under!r}" if under else "")
    return blocks[0]


def marked(path: Path, marker: str, language: str = "sh") -> list[str]:
    """The ```language blocks that come right after a ``<!-- marker ... -->`` line."""
    pattern = rf"^<!-- {marker}\b[^\n]*-->\n```{language}\n(.*?)^```"
    return re.findall(pattern, path.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
