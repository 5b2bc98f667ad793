"""The README's shell walk-through, run as written against a real ``tokenplans serve --dev``.

The blocks marked ``<!-- walkthrough ... -->`` (the quickstart, the holds' HTTP flow in
"Metering a model call", the HTTP API examples and the payments' "Try it locally") run in
order in one ``bash``, in the dev server's folder, with only the port changed. A
command's output is checked against the ``# {...}`` comment under it: every
``"field":value`` pair shown must be in the answer, except the values that differ on
every run (times, generated ids, and those elided with ``...``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_e2e_serve import serving

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:8000"
BLOCK = re.compile(r"^<!-- walkthrough\b[^\n]*-->\n```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
PAIR = re.compile(r'"(\w+)":("(?:[^"\\]|\\.)*"|-?\d+|true|false|null)')
#: Fields whose values differ on every run: generated ids.
VARYING = {"order_id", "payment_id", "razorpay_payment_id", "receipt"}
TIMESTAMP = re.compile(r'^"\d{4}-\d\d-\d\dT')


def walkthrough() -> list[tuple[str, str]]:
    """The walk-through's steps: each command with the output comment under it."""
    blocks = BLOCK.findall(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 4, "the README lost a walk-through block"
    steps: list[tuple[list[str], list[str]]] = []
    for block in blocks:
        current: tuple[list[str], list[str]] | None = None
        for line in block.splitlines():
            if not line.strip():
                current = None  # a blank line ends a step; a comment after one is prose
            elif line.startswith("#"):
                if current is not None:
                    current[1].append(line.lstrip("# "))
            elif current is not None and current[0][-1].endswith("\\") and not current[1]:
                current[0].append(line)
            else:
                current = ([line], [])
                steps.append(current)
    return [("\n".join(command), " ".join(expected)) for command, expected in steps]


def expected_pairs(expected: str) -> list[str]:
    return [
        f'"{field}":{value}'
        for field, value in PAIR.findall(expected)
        if field not in VARYING and "..." not in value and not TIMESTAMP.match(value)
    ]


def test_the_readme_walk_through_works_as_written(tmp_path: Path) -> None:
    steps = walkthrough()
    script = "set -euo pipefail\n" + "".join(
        f"printf '\\n@@step {number}@@\\n'\n{command}\n"
        for number, (command, _) in enumerate(steps)
    )
    tools = str(Path(sys.executable).parent)  # tokenplans, and python for the order id
    with serving("--dev", cwd=tmp_path, env={}) as (url, _):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TOKENPLANS_", "JWT_"))},
            "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        done = subprocess.run(  # noqa: S603 - the README's own commands
            ["bash", "-c", script.replace(README_URL, url)],  # noqa: S607 - bash from PATH
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    outputs = re.split(r"\n@@step \d+@@\n", done.stdout)[1:]
    assert len(outputs) == len(steps)
    checked = 0
    for (command, expected), output in zip(steps, outputs, strict=True):
        for pair in expected_pairs(expected.replace(README_URL, url)):
            assert pair in output, f"{command}\nanswered {output}\nexpected {pair}"
            checked += 1
    assert checked >= 40  # the comments are really compared, not skipped
