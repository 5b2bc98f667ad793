"""Developer and CI entry points.

Plain ``nox`` runs what a contributor needs before pushing: lint, typecheck and the tests on
the oldest and newest supported Pythons. Anything after ``--`` goes to the tool, e.g.
``nox -s tests-3.11 -- -k debit -x``.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
# Never fetch an interpreter: it must already be on PATH (.ci/run puts pyenv's there).
nox.options.download_python = "never"

PYTHONS = ["3.11", "3.13"]
#: Branch coverage of src/tokenplans the full suite must reach (it measured 96% when set).
CORE_COVERAGE_GATE = 95


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Style, formatting and the architecture's dependency rule."""
    session.install("ruff", "import-linter")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # The root packages are found on sys.path; no need to build and install the project.
    session.run("lint-imports", env={"PYTHONPATH": os.pathsep.join(["src", "."])})
    # import-linter only forbids what it is told to; this allows only stdlib + attrs.
    session.run("python", "tools/check_core_imports.py")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the core and every adapter (config in pyproject.toml)."""
    session.install("-e", ".[all]", "mypy")
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite; database tests run when their TOKENPLANS_TEST_*_URL is set.

    A full run (no arguments) also holds the core to its branch-coverage gate; a
    selection (``-- -k debit``) skips the gate, which only a full run can meet.
    """
    session.install("-e", ".[test]")
    session.run(
        "coverage",
        "run",
        "-m",
        "pytest",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "dev")},
    )
    if not session.posargs:
        session.run("coverage", "report", f"--fail-under={CORE_COVERAGE_GATE}")
