"""Developer and CI entry points.

Plain ``nox`` runs what a contributor needs before pushing: lint, typecheck, the tests on
the oldest and newest supported Pythons (3.11 and 3.13; one not on PATH is skipped, except
in CI), the tests on a 3-node MariaDB Galera cluster (booted on this machine; skipped
without Debian's ``mariadb-server`` and ``galera-4``, except in CI), and a strict build of
the documentation site. Anything after ``--`` goes to the tool, e.g.
``nox -s tests-3.11 -- -k debit -x``.
"""

from __future__ import annotations

import os
import tempfile

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "galera", "docs"]
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
    session.run("lint-imports", env={"PYTHONPATH": os.pathsep.join(["src", "adapters"])})
    # import-linter only forbids what it is told to; this allows only stdlib + attrs.
    session.run("python", "tools/check_core_imports.py")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the core and every adapter (config in pyproject.toml)."""
    session.install("-e", ".[all]", "mypy")
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite but the Galera tests (the ``galera`` session's); database tests run
    when their TOKENPLANS_TEST_*_URL is set.

    A full run (no arguments) also holds the core to its branch-coverage gate; a
    selection (``-- -k debit``) skips the gate, which only a full run can meet.
    """
    session.install("-e", ".[test]")
    session.run(
        "coverage",
        "run",
        "-m",
        "pytest",
        "-m",
        "not galera",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "dev")},
    )
    if not session.posargs:
        session.run("coverage", "report", f"--fail-under={CORE_COVERAGE_GATE}")


@nox.session(python="3.11")
def galera(session: nox.Session) -> None:
    """The tests marked ``galera``: a 3-node cluster booted from Debian's packages
    (tests/galera/cluster.py), the storage contract suite on each node, three processes
    on three nodes, holds closed across nodes, a node killed mid-load, a server per
    node. Skipped where the packages are missing; a failure in CI (``CI=true``)."""
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "-m",
        "galera",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "dev")},
    )


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """``mkdocs build --strict`` of the documentation site (docs/, mkdocs.yml): a broken
    link or anchor, or a page left out of the nav, fails it. The site is built into a
    temporary folder and thrown away; ``mkdocs serve`` shows it while you edit."""
    session.install("-e", ".[docs]")
    with tempfile.TemporaryDirectory(prefix="tokenplans-site-") as site:
        session.run("mkdocs", "build", "--strict", "--site-dir", site)
