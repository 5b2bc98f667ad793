"""The documentation's shell walk-through, run as written against a real
``tokenplans serve --dev``.

The blocks marked ``<!-- walkthrough ... -->`` in WALKTHROUGH (the quickstart of Getting
started, the holds' HTTP flow, pricing model calls over HTTP, the HTTP API examples and
the payments' "Try it locally") run in that order in one ``bash``, in the dev server's
folder, with only the port changed. The server is started as the pricing page starts
it, with the example price book (every other block debits amounts, which a price book
does not change). A
command's output is checked against the ``# {...}`` comment under it: every
``"field":value`` pair shown must be in the answer, except the values that differ on
every run (times, generated ids, and those elided with ``...``).

The Command line page's block (``<!-- command-line ... -->``: a server with a real secret,
started in the background) runs too, on a free port.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from doc_blocks import DOCS, marked
from test_e2e_serve import free_port, serving

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
#: The pages whose walk-through blocks run, in this order (each builds on the last's shell).
WALKTHROUGH = [
    DOCS / "getting-started.md",
    DOCS / "holds.md",
    DOCS / "pricing.md",
    DOCS / "http-api.md",
    DOCS / "payments.md",
]
#: How the pricing section starts the server, from the repository's root.
SERVE_PRICED = "TOKENPLANS_PRICE_BOOK=docs/examples/prices.toml tokenplans serve --dev"
DOCS_URL = "http://127.0.0.1:8000"
PAIR = re.compile(r'"(\w+)":("(?:[^"\\]|\\.)*"|-?\d+|true|false|null)')
#: Fields whose values differ on every run: generated ids.
VARYING = {"order_id", "payment_id", "razorpay_payment_id", "receipt"}
TIMESTAMP = re.compile(r'^"\d{4}-\d\d-\d\dT')


def walkthrough() -> list[tuple[str, str]]:
    """The walk-through's steps: each command with the output comment under it."""
    blocks = [block for page in WALKTHROUGH for block in marked(page, "walkthrough")]
    for page in WALKTHROUGH:
        assert marked(page, "walkthrough"), f"{page.name} lost its walk-through block"
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


def test_the_walk_through_works_as_written(tmp_path: Path) -> None:
    steps = walkthrough()
    script = "set -euo pipefail\n" + "".join(
        f"printf '\\n@@step {number}@@\\n'\n{command}\n"
        for number, (command, _) in enumerate(steps)
    )
    tools = str(Path(sys.executable).parent)  # tokenplans, and python for the order id
    assert f"\n{SERVE_PRICED}\n" in (DOCS / "pricing.md").read_text(encoding="utf-8")
    book = {"TOKENPLANS_PRICE_BOOK": str(ROOT / "docs" / "examples" / "prices.toml")}
    with serving("--dev", cwd=tmp_path, env=book) as (url, _):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TOKENPLANS_", "JWT_"))},
            "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        done = subprocess.run(  # noqa: S603 - the documentation's own commands
            ["bash", "-c", script.replace(DOCS_URL, url)],  # noqa: S607 - bash from PATH
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
        for pair in expected_pairs(expected.replace(DOCS_URL, url)):
            assert pair in output, f"{command}\nanswered {output}\nexpected {pair}"
            checked += 1
    assert checked >= 60  # the comments are really compared, not skipped


def test_the_command_line_block_works_as_written(tmp_path: Path) -> None:
    (block,) = marked(DOCS / "command-line.md", "command-line")
    assert "\ntokenplans serve &\n" in block
    port = free_port()
    script = "set -euo pipefail\n" + block.replace(DOCS_URL, f"http://127.0.0.1:{port}").replace(
        "\ntokenplans serve &\n", f"\ntokenplans serve --port {port} &\n"
    )
    tools = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TOKENPLANS_", "JWT_"))},
        "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    process = subprocess.Popen(  # noqa: S603 - the documentation's own commands
        ["bash", "-c", script],  # noqa: S607 - bash from PATH
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a server the block left behind

    assert process.returncode == 0, f"{out}\n{err}"
    assert '"plan":"basic"' in out
    assert '"subject":"alice"' in out
